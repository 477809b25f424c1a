package refresh

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
)

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func newGetRequest() *http.Request { return httptest.NewRequest(http.MethodGet, "/metrics", nil) }
