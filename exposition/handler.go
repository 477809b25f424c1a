package exposition

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// contentType is the text format 0.0.4, which Prometheus 2 and 3 both
// accept whatever else their Accept header prefers, with the escaping
// parameter promhttp adds: every name here is a legacy name, so nothing
// is escaped.
const contentType = "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"

// Write writes the whole exposition as text: the pre-rendered data
// families and the families g gathers, merged by name as one registry
// orders them.
func (e *Exposition) Write(w io.Writer, g prometheus.Gatherer) error {
	bw := bufio.NewWriterSize(w, 32<<10)
	if err := e.write(bw, g, nil); err != nil {
		return err
	}
	return bw.Flush()
}

// write writes the exposition to w; with zw set, it writes gzip members:
// the pre-rendered ones as they are and one per run of gathered families.
func (e *Exposition) write(w io.Writer, g prometheus.Gatherer, zw *gzip.Writer) error {
	mfs, gatherErr := g.Gather()
	var blocks []block
	if r := e.rendered.Load(); r != nil {
		blocks = r.blocks
	}
	// out is where gathered families go: w itself, or a gzip member that
	// is open while a run of them lasts.
	out, open := w, false
	closeMember := func() error {
		if !open {
			return nil
		}
		open, out = false, w
		return zw.Close()
	}
	i, j := 0, 0
	for i < len(mfs) || j < len(blocks) {
		if j == len(blocks) || i < len(mfs) && mfs[i].GetName() < blocks[j].name {
			if zw != nil && !open {
				zw.Reset(w)
				open, out = true, zw
			}
			if _, err := expfmt.MetricFamilyToText(out, mfs[i]); err != nil {
				return err
			}
			i++
			continue
		}
		if err := closeMember(); err != nil {
			return err
		}
		if err := e.writeBlock(w, &blocks[j], zw != nil); err != nil {
			return err
		}
		j++
	}
	if err := closeMember(); err != nil {
		return err
	}
	if gatherErr != nil {
		// As promhttp's ContinueOnError: what could be gathered is served.
		return fmt.Errorf("gather: %w", gatherErr)
	}
	return nil
}

// writeBlock writes a pre-rendered family: its gzip members as they are,
// or the text they hold.
func (e *Exposition) writeBlock(w io.Writer, b *block, compressed bool) error {
	if compressed {
		for _, m := range b.members {
			if _, err := w.Write(m); err != nil {
				return err
			}
		}
		return nil
	}
	return e.writeText(w, b.members)
}

// HandlerOpts bound what /metrics may cost.
type HandlerOpts struct {
	// MaxRequests bounds concurrent scrapes; more are answered 503 at
	// once. Zero means no limit.
	MaxRequests int
	// Timeout is the write deadline of one scrape; zero means none.
	Timeout time.Duration
}

// Handler serves the exposition with the families g gathers. A scrape
// writes shared bytes: its allocations do not grow with the series count.
func (e *Exposition) Handler(g prometheus.Gatherer, o HandlerOpts) http.Handler {
	var sem chan struct{}
	if o.MaxRequests > 0 {
		sem = make(chan struct{}, o.MaxRequests)
	}
	zws := sync.Pool{New: func() any {
		zw, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
		return zw
	}}
	bws := sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 32<<10) }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sem != nil {
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			default:
				http.Error(w, "Too many concurrent scrapes (limit "+strconv.Itoa(o.MaxRequests)+", --web.max-requests); try again.",
					http.StatusServiceUnavailable)
				return
			}
		}
		if o.Timeout > 0 {
			// A client that stops reading cannot hold a slot for longer.
			_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(o.Timeout))
		}
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Add("Vary", "Accept-Encoding")
		bw := bws.Get().(*bufio.Writer)
		defer bws.Put(bw)
		bw.Reset(w)
		var zw *gzip.Writer
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			h.Set("Content-Encoding", "gzip")
			zw = zws.Get().(*gzip.Writer)
			defer zws.Put(zw)
		}
		err := e.write(bw, g, zw)
		if ferr := bw.Flush(); err == nil {
			err = ferr
		}
		if err != nil {
			e.logger.Error("Error serving metrics", "err", err)
		}
	})
}

// acceptsGzip reads an Accept-Encoding header (RFC 9110): gzip is
// acceptable when listed with a q-value above 0, or, when not listed, when
// * is. An explicit gzip entry overrides *.
func acceptsGzip(header string) bool {
	star, starOK := false, false
	for part := range strings.SplitSeq(header, ",") {
		fields := strings.Split(part, ";")
		coding := strings.ToLower(strings.TrimSpace(fields[0]))
		if coding != "gzip" && coding != "*" {
			continue
		}
		ok := true
		for _, param := range fields[1:] {
			name, value, _ := strings.Cut(strings.TrimSpace(param), "=")
			if strings.EqualFold(strings.TrimSpace(name), "q") {
				if f, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil && f == 0 {
					ok = false
				}
			}
		}
		if coding == "gzip" {
			return ok
		}
		star, starOK = true, ok
	}
	return star && starOK
}
