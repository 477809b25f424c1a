package cloudcarbonreceiver

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension/xextension/storage"
)

const (
	// stateKey is the storage key of the receiver's state: the exporter's
	// state file, bytes for bytes.
	stateKey = "state"
	// storageTimeout bounds one read or write of the state, so that a
	// storage extension that hangs cannot hold a refresher or the
	// shutdown forever.
	storageTimeout = 30 * time.Second
)

// storageBlob keeps the store's state in a storage extension's client.
type storageBlob struct {
	// ctx is the start's context without its cancellation: the store
	// saves after data changes and once more at shutdown, outside any
	// caller's context, and storageTimeout bounds each operation.
	ctx    context.Context
	client storage.Client
}

// newStorageBlob opens the receiver's client of the storage extension id.
func newStorageBlob(ctx context.Context, host component.Host, id, receiverID component.ID) (*storageBlob, error) {
	ext, ok := host.GetExtensions()[id]
	if !ok {
		return nil, fmt.Errorf("storage: no extension %s is configured in the service's extensions", id)
	}
	se, ok := ext.(storage.Extension)
	if !ok {
		return nil, fmt.Errorf("storage: the extension %s is not a storage extension", id)
	}
	client, err := se.GetClient(ctx, component.KindReceiver, receiverID, "")
	if err != nil {
		return nil, fmt.Errorf("storage: %s: %w", id, err)
	}
	return &storageBlob{ctx: context.WithoutCancel(ctx), client: client}, nil
}

// Load implements store.Blob; a missing key is nil, as the Client says.
func (b *storageBlob) Load() ([]byte, error) {
	ctx, cancel := context.WithTimeout(b.ctx, storageTimeout)
	defer cancel()
	return b.client.Get(ctx, stateKey)
}

// Save implements store.Blob.
func (b *storageBlob) Save(data []byte) error {
	ctx, cancel := context.WithTimeout(b.ctx, storageTimeout)
	defer cancel()
	return b.client.Set(ctx, stateKey, data)
}

func (b *storageBlob) close(ctx context.Context) error {
	return b.client.Close(ctx)
}
