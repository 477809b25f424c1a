package otlp

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics count the pushes. They live in the caller's registry, so they
// are scraped and pushed like every other series.
type Metrics struct {
	pushes      *prometheus.CounterVec
	lastSuccess prometheus.Gauge

	reg prometheus.Registerer
}

// NewMetrics creates the push metrics and registers the counter, which
// shows no series until a pusher starts.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reg: reg,
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cloudcarbon", Name: "otlp_pushes_total",
			Help: "OTLP pushes by result (success, failure); retries within a push are not counted.",
		}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "cloudcarbon", Name: "otlp_last_push_success_timestamp_seconds",
			Help: "When an OTLP push last succeeded, as a Unix timestamp.",
		}),
	}
	reg.MustRegister(m.pushes)
	return m
}

// register shows the OTLP series once a pusher exists, so that an
// exporter without OTLP does not expose a push timestamp that never moves.
// A reload starts a new pusher with the same metrics, hence the tolerance
// of an earlier registration.
func (m *Metrics) register() {
	m.pushes.WithLabelValues("success")
	m.pushes.WithLabelValues("failure")
	if err := m.reg.Register(m.lastSuccess); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			panic(err) // only a programming error gets here
		}
	}
}
