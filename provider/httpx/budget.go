package httpx

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider"
)

// Limits bound what one refresh of one source reads, whatever the pages
// look like: a page count alone lets an API that answers empty pages with
// a link to the next one run for an hour, and lets a few huge pages
// exhaust memory.
type Limits struct {
	// MaxBytes bounds the bytes of every answer of the refresh together
	// (bodies as read, error answers and token answers included).
	MaxBytes int64
	// MaxRecords bounds the records the refresh decodes, which stay in
	// memory.
	MaxRecords int64
	// MaxEmptyPages bounds the pages in a row that hold no record yet
	// link to another page.
	MaxEmptyPages int64
}

// DefaultLimits are far above what the largest estates need (a million
// series is about a million records over all months), and far below what
// exhausts a container's memory or a day's worth of paging.
func DefaultLimits() Limits {
	return Limits{MaxBytes: 4 << 30, MaxRecords: 5_000_000, MaxEmptyPages: 100}
}

// Budget counts what one refresh has read against its Limits. It travels
// in the refresh's context, so that the HTTP layer charges every body and
// a client's paging loop every page, whichever SDK sits between them. A
// nil *Budget bounds nothing.
type Budget struct {
	limits                     Limits
	bytes, records, emptyPages atomic.Int64
	// over is the first limit passed: the refresh is over budget for
	// good, whichever layer swallowed the error that said so.
	over atomic.Pointer[BudgetError]
	// progress is when an answer last moved (headers or body bytes), in
	// Unix nanoseconds; the budget's creation before the first.
	progress atomic.Int64
}

// NewBudget returns an empty budget with limits l; a zero limit takes its
// default.
func NewBudget(l Limits) *Budget {
	d := DefaultLimits()
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxRecords <= 0 {
		l.MaxRecords = d.MaxRecords
	}
	if l.MaxEmptyPages <= 0 {
		l.MaxEmptyPages = d.MaxEmptyPages
	}
	b := &Budget{limits: l}
	b.progressed()
	return b
}

func (b *Budget) progressed() {
	if b != nil {
		b.progress.Store(time.Now().UnixNano())
	}
}

// Idle returns how long no answer of the refresh has moved: no headers
// arrived and no body byte was read. A refresh whose requests all hang
// grows idle while one that reads a slow answer does not.
func (b *Budget) Idle() time.Duration {
	if b == nil {
		return 0
	}
	return time.Since(time.Unix(0, b.progress.Load()))
}

type budgetKey struct{}

// WithBudget returns ctx carrying b.
func WithBudget(ctx context.Context, b *Budget) context.Context {
	return context.WithValue(ctx, budgetKey{}, b)
}

// BudgetOf returns the budget ctx carries, nil when none.
func BudgetOf(ctx context.Context) *Budget {
	b, _ := ctx.Value(budgetKey{}).(*Budget)
	return b
}

// Bytes returns the bytes charged so far.
func (b *Budget) Bytes() int64 {
	if b == nil {
		return 0
	}
	return b.bytes.Load()
}

// Records returns the records charged so far.
func (b *Budget) Records() int64 {
	if b == nil {
		return 0
	}
	return b.records.Load()
}

// chargeBytes adds n bytes; the error once the refresh is over budget.
func (b *Budget) chargeBytes(n int) error {
	if b == nil || n == 0 {
		return nil
	}
	b.progressed()
	if b.bytes.Add(int64(n)) > b.limits.MaxBytes {
		return b.fail(fmt.Sprintf("the answers of one refresh passed %d bytes", b.limits.MaxBytes))
	}
	return nil
}

func (b *Budget) fail(what string) error {
	e := &BudgetError{What: what}
	b.over.CompareAndSwap(nil, e)
	return e
}

// Overrun returns the *BudgetError of the budget in ctx once a limit is
// passed, nil before. A client checks it where an SDK swallows the read
// error of an answer (go-sdk-core's token decoding does), so that the
// refresh reports the limit rather than what the SDK made of it.
func Overrun(ctx context.Context) error {
	if b := BudgetOf(ctx); b != nil {
		if e := b.over.Load(); e != nil {
			return e
		}
	}
	return nil
}

// Page charges one page of records to the budget in ctx. A client calls
// it for every page it decodes, before asking for the next; its error
// ends the fetch as a malformed response.
func Page(ctx context.Context, records int) error {
	b := BudgetOf(ctx)
	if b == nil {
		return nil
	}
	if records == 0 {
		if n := b.emptyPages.Add(1); n > b.limits.MaxEmptyPages {
			return b.fail(fmt.Sprintf("the API answered %d pages in a row that hold no record but link to another page", n))
		}
		return nil
	}
	b.emptyPages.Store(0)
	if n := b.records.Add(int64(records)); n > b.limits.MaxRecords {
		return b.fail(fmt.Sprintf("one refresh passed %d records", b.limits.MaxRecords))
	}
	return nil
}

// BudgetError is a refresh that read more than its Limits allow. It is
// final: retrying reads the same answers again.
type BudgetError struct {
	What string
}

func (e *BudgetError) Error() string {
	return "malformed response: " + e.What + "; the refresh stops there and keeps the last good data"
}

// FailureReason implements provider.Classified.
func (*BudgetError) FailureReason() provider.Reason { return provider.ReasonMalformed }

// NonRetriable tells azcore's retry policy not to retry.
func (*BudgetError) NonRetriable() {}
