package provider

import (
	"fmt"
	"slices"
	"time"
)

// Month is a calendar month, counted from year 0 (year*12 + month-1) so
// that month arithmetic is integer arithmetic and a Month fits in a record
// without allocation.
type Month int32

// MonthOf returns the month that contains t, in UTC.
func MonthOf(t time.Time) Month {
	t = t.UTC()
	return NewMonth(t.Year(), t.Month())
}

// NewMonth returns the month m of year y.
func NewMonth(y int, m time.Month) Month {
	return Month(int32(y)*12 + int32(m) - 1)
}

// ParseMonth parses "YYYY-MM".
func ParseMonth(s string) (Month, error) {
	t, err := time.Parse("2006-01", s)
	if err != nil {
		return 0, fmt.Errorf("invalid month %q: want YYYY-MM", s)
	}
	return MonthOf(t), nil
}

// Year returns the month's year.
func (m Month) Year() int { return int(m) / 12 }

// Month returns the month of the year.
func (m Month) Month() time.Month { return time.Month(int(m)%12 + 1) }

// Start returns the first instant of the month in UTC.
func (m Month) Start() time.Time {
	return time.Date(m.Year(), m.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// End returns the first instant of the following month in UTC.
func (m Month) End() time.Time { return (m + 1).Start() }

// Add returns the month n months later (earlier for negative n).
func (m Month) Add(n int) Month { return m + Month(n) }

// String formats the month as "YYYY-MM".
func (m Month) String() string {
	return fmt.Sprintf("%04d-%02d", m.Year(), int(m.Month()))
}

// MarshalText implements encoding.TextMarshaler, so months read well in
// JSON state files and as map keys.
func (m Month) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *Month) UnmarshalText(b []byte) error {
	v, err := ParseMonth(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Range returns the months from first to last inclusive, oldest first.
func Range(first, last Month) []Month {
	if last < first {
		return nil
	}
	out := make([]Month, 0, int(last-first)+1)
	for m := first; m <= last; m++ {
		out = append(out, m)
	}
	return out
}

// Runs sorts and deduplicates months and returns the [first, last] pairs
// of their contiguous runs, for APIs that take month ranges.
func Runs(months []Month) [][2]Month {
	ms := slices.Clone(months)
	slices.Sort(ms)
	ms = slices.Compact(ms)
	var runs [][2]Month
	for _, m := range ms {
		if n := len(runs); n > 0 && runs[n-1][1]+1 == m {
			runs[n-1][1] = m
			continue
		}
		runs = append(runs, [2]Month{m, m})
	}
	return runs
}
