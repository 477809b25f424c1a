package provider_test

import (
	"testing"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

func TestLatestPublished(t *testing.T) {
	s := provider.Schedule{PublishDelay: 16 * 24 * time.Hour}
	feb := provider.NewMonth(2025, time.February)
	tests := []struct {
		name     string
		schedule provider.Schedule
		now      time.Time
		want     provider.Month
	}{
		{"before publication", s, time.Date(2025, time.March, 16, 23, 59, 59, 0, time.UTC), feb - 1},
		{"at publication", s, time.Date(2025, time.March, 17, 0, 0, 0, 0, time.UTC), feb},
		{"late in the month", s, time.Date(2025, time.March, 31, 12, 0, 0, 0, time.UTC), feb},
		{"other time zone", s, time.Date(2025, time.March, 17, 1, 0, 0, 0, time.FixedZone("CET", 3600)), feb},
		{"no delay", provider.Schedule{}, time.Date(2025, time.March, 1, 0, 0, 0, 0, time.UTC), feb},
		{"delay over a month", provider.Schedule{PublishDelay: 40 * 24 * time.Hour}, time.Date(2025, time.March, 31, 0, 0, 0, 0, time.UTC), feb - 1},
	}
	for _, tt := range tests {
		if got := tt.schedule.LatestPublished(tt.now); got != tt.want {
			t.Errorf("%s: LatestPublished(%s) = %s, want %s", tt.name, tt.now, got, tt.want)
		}
	}
}
