package ibm_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
	"github.com/cloudcarbon/cloudcarbon_exporter/provider/ibm"
)

// checker is a provider.Checker that records what Check reports, as
// "key: message", and resolves secrets to themselves.
type checker struct {
	has  map[string]bool
	errs []string
}

func (c *checker) Errorf(key, format string, args ...any) {
	c.errs = append(c.errs, key+": "+fmt.Errorf(format, args...).Error())
}

func (c *checker) Has(key string) bool { return c.has[key] }

func (c *checker) Secret(provider.SecretRef, bool) {}

func (c *checker) File(string, *string) {}

func TestConfigPageConcurrency(t *testing.T) {
	tests := []struct {
		name    string
		value   int
		set     bool // the file sets page_concurrency
		want    int
		wantErr string
	}{
		{name: "default", want: ibm.DefaultPageConcurrency},
		{name: "one page at a time", value: 1, set: true, want: 1},
		{name: "most", value: 32, set: true, want: 32},
		{name: "0 in the file is not defaulted", value: 0, set: true,
			wantErr: "page_concurrency: ibm.page_concurrency must be from 1 (one page at a time) to 32, not 0"},
		{name: "negative", value: -2, set: true,
			wantErr: "page_concurrency: ibm.page_concurrency must be from 1 (one page at a time) to 32, not -2"},
		{name: "too many", value: 33, set: true,
			wantErr: "page_concurrency: ibm.page_concurrency must be from 1 (one page at a time) to 32, not 33"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &ibm.Config{Name: "ibm", APIKey: canary, PageConcurrency: tt.value}
			v := &checker{has: map[string]bool{"api_key": true, "page_concurrency": tt.set}}
			c.Check(v)
			var wantErrs []string
			if tt.wantErr != "" {
				wantErrs = []string{tt.wantErr}
			}
			if !slices.Equal(v.errs, wantErrs) {
				t.Errorf("errors %q, want %q", v.errs, wantErrs)
			}
			if tt.wantErr == "" && c.PageConcurrency != tt.want {
				t.Errorf("page_concurrency = %d, want %d", c.PageConcurrency, tt.want)
			}
		})
	}
}
