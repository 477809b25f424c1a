package aws

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/cloudcarbon/cloudcarbon_exporter/provider/httpx"
)

// pageDecoder is an operation's output, which decodes itself from the
// answer's body.
type pageDecoder interface {
	decode(body io.Reader) error
}

func (o *getEstimatedCarbonEmissionsOutput) decode(body io.Reader) error {
	return decodePage(body, &o.Results, &o.NextToken)
}

func (o *getEstimatedCarbonEmissionsDimensionValuesOutput) decode(body io.Reader) error {
	return decodePage(body, &o.Results, &o.NextToken)
}

func (o *getEstimatedWaterAllocationOutput) decode(body io.Reader) error {
	return decodePage(body, &o.Results, &o.NextToken)
}

// decodePage decodes a page of an operation's results,
// {"Results":[…],"NextToken":"…"}, one result at a time, so that memory
// holds the typed results and one result's text, never the whole body:
// a 5000-result page is about 4 MiB, and a broken answer may run to
// MaxResponseBytes. Member names match exactly, as the generated
// deserializers match them; members the model does not know are skipped
// token by token. A retried attempt decodes afresh: a field an earlier,
// broken answer set (a NextToken) must not survive into this one.
func decodePage[T any](body io.Reader, results *[]T, next **string) error {
	*results, *next = nil, nil
	dec := json.NewDecoder(httpx.CompactJSON(body))
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return err
		}
		switch key {
		case "Results":
			err = decodeList(dec, results)
		case "NextToken":
			err = dec.Decode(next)
		default:
			err = skipValue(dec)
		}
		if err != nil {
			return err
		}
	}
	return expectDelim(dec, '}')
}

// decodeList appends the elements of a JSON array (or null) to list.
func decodeList[T any](dec *json.Decoder, list *[]T) error {
	tok, err := dec.Token()
	if err != nil || tok == nil {
		return err
	}
	if tok != json.Delim('[') {
		return fmt.Errorf("a list is %v, not an array", tok)
	}
	for dec.More() {
		var v T
		if err := dec.Decode(&v); err != nil {
			return err
		}
		*list = append(*list, v)
	}
	return expectDelim(dec, ']')
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != d {
		return fmt.Errorf("found %v where %v belongs", tok, d)
	}
	return nil
}

// skipValue consumes one value, nested ones token by token.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}
