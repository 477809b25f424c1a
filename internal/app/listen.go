package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/mdlayher/vsock"
	"github.com/prometheus/exporter-toolkit/web"
)

// listen binds the addresses the web flags name, as web.ListenAndServe
// would, but before anything else starts: an address in use must stop the
// exporter before it calls a cloud or writes its state file.
func listen(f *web.FlagConfig, logger *slog.Logger) (_ []net.Listener, err error) {
	if f == nil || f.WebConfigFile == nil {
		return nil, web.ErrMissingFlag
	}
	if f.WebSystemdSocket != nil && *f.WebSystemdSocket {
		logger.Info("Listening on systemd activated listeners instead of port listeners.")
		ls, err := activation.Listeners()
		if err != nil {
			return nil, err
		}
		if len(ls) == 0 {
			return nil, errors.New("no socket activation file descriptors found")
		}
		return ls, nil
	}
	if f.WebListenAddresses == nil || len(*f.WebListenAddresses) == 0 {
		return nil, web.ErrNoListeners
	}
	var ls []net.Listener
	defer func() {
		if err != nil {
			closeListeners(ls)
		}
	}()
	for _, addr := range *f.WebListenAddresses {
		var l net.Listener
		if rest, ok := strings.CutPrefix(addr, "vsock://"); ok {
			port, perr := vsockPort(rest)
			if perr != nil {
				return nil, fmt.Errorf("--web.listen-address %s: %w", addr, perr)
			}
			l, err = vsock.Listen(port, nil)
		} else {
			l, err = net.Listen("tcp", addr)
		}
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// vsockPort reads the port of a vsock://:PORT address.
func vsockPort(hostPort string) (uint32, error) {
	_, p, err := net.SplitHostPort(hostPort)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(p, 10, 32)
	if err != nil {
		return 0, errors.New("the vsock port must be a number")
	}
	return uint32(n), nil
}

func closeListeners(ls []net.Listener) {
	for _, l := range ls {
		_ = l.Close()
	}
}
