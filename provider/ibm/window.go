package ibm

import (
	"context"
	"net/url"
	"sync"
	"sync/atomic"
)

// window fetches the pages plan predicts, PageConcurrency at a time, and
// holds at most twice that many fetched and not yet walked: a query of
// thousands of pages then holds a few of them decoded rather than all,
// while the walk still finds the next page ready. The first failure
// cancels the other requests and is what the walk reports; the requests
// it cancels are not retried. A nil window predicts nothing.
type window struct {
	offsets []int64
	pages   []chan *wirePage
	// walked is how many pages the walk took.
	walked int
	// room holds a token per page fetched or in flight and not taken.
	room   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu  sync.Mutex
	err error
}

func newWindow(ctx context.Context, p *Provider, q url.Values, offsets []int64) *window {
	w := &window{offsets: offsets, pages: make([]chan *wirePage, len(offsets)), room: make(chan struct{}, 2*p.opts.PageConcurrency)}
	for i := range w.pages {
		w.pages[i] = make(chan *wirePage, 1)
	}
	ctx, w.cancel = context.WithCancel(ctx)
	var claimed atomic.Int64
	for range p.opts.PageConcurrency {
		w.wg.Go(func() {
			for {
				// A token first, then the next page: the pages claimed
				// and not taken are then always the next ones the walk
				// takes, and it never waits on a page no one fetches.
				select {
				case w.room <- struct{}{}:
				case <-ctx.Done():
					return
				}
				i := int(claimed.Add(1) - 1)
				if i >= len(offsets) {
					return
				}
				w.pages[i] <- w.fetch(ctx, p, q, offsets[i])
			}
		})
	}
	return w
}

// fetch fetches one page, or records the failure and cancels the others.
func (w *window) fetch(ctx context.Context, p *Provider, q url.Values, offset int64) *wirePage {
	err := ctx.Err()
	var page *wirePage
	if err != nil {
		// Another page failed (or the caller gave up) while this one
		// waited for a worker: send nothing.
		err = p.transportFailure(ctx, pageWhat(q, offset), err)
	} else {
		page, err = p.getPage(ctx, q, offset, pageLimit)
	}
	if err != nil {
		w.mu.Lock()
		if w.err == nil {
			w.err = err
		}
		w.mu.Unlock()
		w.cancel()
	}
	return page
}

// next returns the offset of the next page the window holds; -1 when it
// holds no more.
func (w *window) next() int64 {
	if w == nil || w.walked >= len(w.offsets) {
		return -1
	}
	return w.offsets[w.walked]
}

// take returns the next page, waiting for it, or the first failure of any
// page. what names the page in a failure of ctx.
func (w *window) take(ctx context.Context, p *Provider, what string) (*wirePage, error) {
	var page *wirePage
	select {
	case page = <-w.pages[w.walked]:
		w.walked++
		<-w.room
	case <-ctx.Done():
		// The workers stop at ctx's end: the page may never come.
		return nil, p.transportFailure(ctx, what, ctx.Err())
	}
	if page == nil {
		w.mu.Lock()
		defer w.mu.Unlock()
		return nil, w.err
	}
	return page, nil
}

// stop cancels the requests in flight and waits for them.
func (w *window) stop() {
	if w == nil {
		return
	}
	w.cancel()
	w.wg.Wait()
}
