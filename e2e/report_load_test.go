//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestReportLoad has 150 clients ask the demo for reports for 10 s, each
// sending its next request when the last one is answered: most for the
// monthly report by every dimension in JSON (the largest), some for other
// parameters. Every answer must be a whole report or a deliberate 503 above
// --web.max-requests, and the peak resident set (VmHWM) stays under
// 200 MB. Only loopback is targeted, and the run is bounded in time.
func TestReportLoad(t *testing.T) {
	const (
		clients  = 150
		duration = 10 * time.Second
	)
	dir := t.TempDir()
	bin := filepath.Join(dir, "cloudcarbon_exporter")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "--demo", "--web.listen-address="+addr)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("exporter output:\n%s", logs.String())
		}
	}()
	base := "http://" + addr
	waitFor(t, "the demo to be ready", 60*time.Second, func() error { _, err := get(base + "/-/ready"); return err })

	everything := "/report?period=month&by=provider,account,service,location,scope&unit=g&format=json"
	others := []string{
		"/report?period=year&format=csv",
		"/report?period=quarter&by=provider,scope&format=markdown",
		"/report?period=month&by=provider,account&format=csv",
	}
	body, err := get(base + everything)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct{ Rows []json.RawMessage }
	if err := json.Unmarshal(body, &rep); err != nil || len(rep.Rows) == 0 {
		t.Fatalf("the monthly report by every dimension: %v, %d rows", err, len(rep.Rows))
	}
	startRSS := procStatusKB(cmd.Process.Pid, "VmHWM")

	type result struct {
		latency time.Duration
		code    int
		err     error
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var (
		mu      sync.Mutex
		results []result
		wg      sync.WaitGroup
	)
	end := time.Now().Add(duration)
	for c := range clients {
		path := everything
		if c%5 == 4 {
			path = others[c%len(others)]
		}
		wg.Go(func() {
			for time.Now().Before(end) {
				began := time.Now()
				resp, err := client.Get(base + path)
				r := result{err: err}
				if err == nil {
					var got []byte
					got, r.err = io.ReadAll(resp.Body)
					_ = resp.Body.Close()
					r.code, r.latency = resp.StatusCode, time.Since(began)
					if r.err == nil && r.code == http.StatusOK && path == everything && !bytes.Equal(got, body) && !json.Valid(got) {
						r.err = fmt.Errorf("an incomplete report of %d bytes", len(got))
					}
				}
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
				if r.code == http.StatusServiceUnavailable {
					time.Sleep(10 * time.Millisecond) // as a client told to retry
				}
			}
		})
	}
	wg.Wait()
	peakRSS := procStatusKB(cmd.Process.Pid, "VmHWM")

	codes := map[int]int{}
	var latencies []time.Duration
	for i, r := range results {
		if r.err != nil {
			t.Errorf("request %d: %v", i, r.err)
			continue
		}
		codes[r.code]++
		if r.code != http.StatusOK && r.code != http.StatusServiceUnavailable {
			t.Errorf("request %d: status %d", i, r.code)
		}
		if r.code == http.StatusOK {
			latencies = append(latencies, r.latency)
		}
	}
	if len(latencies) == 0 {
		t.Fatalf("no report answered 200: %v", codes)
	}
	slices.Sort(latencies)
	p := func(q float64) time.Duration { return latencies[int(q*float64(len(latencies)-1))] }
	t.Logf("%d clients for %s: %d requests, status %v; 200s: p50 %s, p99 %s, max %s; report %d KiB; peak RSS (VmHWM) %d MB, %d MB before the load",
		clients, duration, len(results), codes, p(0.5), p(0.99), latencies[len(latencies)-1], len(body)/1024, peakRSS/1024, startRSS/1024)
	if peakRSS > 200*1024 {
		t.Errorf("peak RSS %d MB, want at most 200 MB", peakRSS/1024)
	}
}
