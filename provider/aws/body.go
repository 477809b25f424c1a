package aws

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
)

// maxRequestBody bounds the request bodies ownBody copies: the exporter's
// requests are small JSON documents it builds itself.
const maxRequestBody = 1 << 20

// ownBody gives the transport a copy of each request body that nobody
// else closes. smithy-go closes the body it built as soon as the response
// headers are in, and its closed body answers a later read with io.EOF
// as an error from WriteTo. net/http reads the body once more after its
// Content-Length (to check there is nothing beyond), and when the server
// answered before that read, the read fails, the transport closes the
// connection under the response being decoded, and the SDK sends again a
// request that had succeeded: an extra Cost Explorer charge, seen under
// load.
type ownBody struct{ base http.RoundTripper }

func (t ownBody) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return t.base.RoundTrip(req)
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, maxRequestBody+1))
	_ = req.Body.Close() // a RoundTripper closes the body, whatever happens
	if err != nil {
		return nil, fmt.Errorf("reading the request body: %w", err)
	}
	if len(b) > maxRequestBody {
		return nil, fmt.Errorf("request body larger than %d bytes", maxRequestBody)
	}
	r := req.Clone(req.Context())
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	return t.base.RoundTrip(r)
}
