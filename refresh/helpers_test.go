package refresh

import (
	"io"
	"log/slog"
	"strings"
)

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
