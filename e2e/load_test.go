//go:build e2e

package e2e

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestScrapeLoad sends 100 scrapes a second to the demo for 30 s, half of
// them asking for gzip, starting while the first refresh runs. Every
// answer must be complete or a deliberate 503 above --web.max-requests;
// p99 latency stays under 100 ms and the resident set under 200 MB. Only
// loopback is targeted, and the request count is bounded.
func TestScrapeLoad(t *testing.T) {
	const (
		rate     = 100
		duration = 30 * time.Second
		total    = int(rate * duration / time.Second)
	)
	dir := t.TempDir()
	bin := filepath.Join(dir, "cloudcarbon_exporter")
	if out, err := exec.Command("go", "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "--demo", "--web.listen-address="+addr, "--web.max-requests=20")
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
	// Healthy, not ready: the load starts while the first refresh runs.
	waitFor(t, "exporter to listen", 30*time.Second, func() error { _, err := get(base + "/-/healthy"); return err })

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 50, DisableCompression: true}}
	type result struct {
		latency time.Duration
		code    int
		err     error
	}
	results := make([]result, total)
	var wg sync.WaitGroup
	var peakRSS int64
	stopRSS := make(chan struct{})
	go func() {
		for {
			if kb := procStatusKB(cmd.Process.Pid, "VmRSS"); kb > peakRSS {
				peakRSS = kb
			}
			select {
			case <-stopRSS:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	tick := time.NewTicker(time.Second / rate)
	for i := range total {
		<-tick.C
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
			gz := i%2 == 1
			if gz {
				req.Header.Set("Accept-Encoding", "gzip")
			}
			began := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				results[i] = result{err: err}
				return
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			results[i] = result{latency: time.Since(began), code: resp.StatusCode, err: err}
			if err == nil && resp.StatusCode == http.StatusOK {
				results[i].err = checkScrape(body, gz)
			}
		})
	}
	tick.Stop()
	wg.Wait()
	close(stopRSS)

	var latencies []time.Duration
	codes := map[int]int{}
	for i, r := range results {
		if r.err != nil {
			t.Errorf("scrape %d: %v", i, r.err)
			continue
		}
		codes[r.code]++
		if r.code != http.StatusOK && r.code != http.StatusServiceUnavailable {
			t.Errorf("scrape %d: status %d", i, r.code)
		}
		latencies = append(latencies, r.latency)
	}
	slices.Sort(latencies)
	p := func(q float64) time.Duration { return latencies[int(q*float64(len(latencies)-1))] }
	t.Logf("%d scrapes in %s: status %v, p50 %s, p99 %s, max %s, peak RSS %d MB",
		total, duration, codes, p(0.5), p(0.99), latencies[len(latencies)-1], peakRSS/1024)
	if p(0.99) > 100*time.Millisecond {
		t.Errorf("p99 latency %s, want at most 100ms", p(0.99))
	}
	if peakRSS > 200*1024 {
		t.Errorf("peak RSS %d MB, want at most 200 MB", peakRSS/1024)
	}
	if codes[http.StatusOK] < total*9/10 {
		t.Errorf("only %d of %d scrapes answered 200", codes[http.StatusOK], total)
	}
}

// checkScrape checks that a scrape is a whole exposition: gzip members
// decode to text that ends with the process families, which come last.
func checkScrape(body []byte, gz bool) error {
	if gz {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
	}
	if !bytes.Contains(body, []byte("\n# TYPE process_start_time_seconds gauge\n")) || !bytes.HasSuffix(body, []byte("\n")) {
		return fmt.Errorf("incomplete exposition of %d bytes", len(body))
	}
	return nil
}

// procStatusKB reads a memory figure of a process (VmRSS, VmHWM) from
// /proc, in KiB; 0 when it cannot.
func procStatusKB(pid int, field string) int64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb
		}
	}
	return 0
}
