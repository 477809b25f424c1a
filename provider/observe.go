package provider

// RequestObserver is told of every HTTP attempt a provider client makes:
// the logical endpoint name (a small fixed set per provider, never a URL)
// and the status code, 0 when no response arrived.
type RequestObserver func(endpoint string, code int)
