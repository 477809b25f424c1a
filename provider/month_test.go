package provider

import (
	"testing"
	"time"
)

func TestRuns(t *testing.T) {
	m := NewMonth(2024, time.January)
	tests := []struct {
		in   []Month
		want [][2]Month
	}{
		{nil, nil},
		{[]Month{m}, [][2]Month{{m, m}}},
		{[]Month{m + 2, m, m + 1, m + 1}, [][2]Month{{m, m + 2}}},
		{[]Month{m + 5, m, m + 1, m + 3}, [][2]Month{{m, m + 1}, {m + 3, m + 3}, {m + 5, m + 5}}},
		{[]Month{m + 11, m + 12}, [][2]Month{{m + 11, m + 12}}}, // across a year
	}
	for _, tt := range tests {
		got := Runs(tt.in)
		if len(got) != len(tt.want) {
			t.Errorf("Runs(%v) = %v, want %v", tt.in, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("Runs(%v) = %v, want %v", tt.in, got, tt.want)
			}
		}
	}
}
