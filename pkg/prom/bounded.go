package prom

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// errorBodyBytes is how much of an error answer (non-2xx) is read: its
// message, which the answer's status already classifies, is cut there.
const errorBodyBytes = 64 << 10

// valueReadChunk bounds each read of a boundedReader watching a decoder, so
// that what it has read ahead of the decoder is the value in progress plus
// at most this.
const valueReadChunk = 64 << 10

// boundedReader reads r, failing with an error of kind TooLarge once more
// than max bytes came (negative: no limit), where io.LimitReader would end
// early: a truncated answer must never look like a complete one. With dec
// set, it also fails once the value dec is reading (or the white space it
// is skipping) is larger than maxValue, since json.Decoder buffers a whole
// value before returning it.
type boundedReader struct {
	r   io.Reader
	max int64
	n   int64 // bytes read

	dec      *json.Decoder
	maxValue int64
	part     string // what the value in progress is, for the error

	// limitErr is the error of the limit exceeded; readErr the first error
	// of r other than io.EOF.
	limitErr, readErr error
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.limitErr != nil {
		return 0, b.limitErr
	}
	if b.max >= 0 && int64(len(p)) > b.max-b.n+1 {
		p = p[:b.max-b.n+1] // one byte past the limit tells it is exceeded
	}
	if b.dec != nil && len(p) > valueReadChunk {
		p = p[:valueReadChunk]
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF && b.readErr == nil {
		b.readErr = err
	}
	switch {
	case b.max >= 0 && b.n > b.max:
		b.limitErr = tooManyBytes(b.max, 0)
		return n - int(b.n-b.max), b.limitErr
	case b.dec != nil && b.n-b.dec.InputOffset() > b.maxValue+valueReadChunk:
		// Before this read, the decoder had consumed all but the value in
		// progress; the read added at most valueReadChunk.
		b.limitErr = withKind(TooLarge, &LimitError{Max: b.maxValue, Unit: "bytes", Part: b.part})
		return n, b.limitErr
	}
	return n, err
}

// tooManyBytes is the error of an answer over max bytes; size is its
// Content-Length when that told, otherwise 0.
func tooManyBytes(max, size int64) error {
	return withKind(TooLarge, &LimitError{Max: max, Unit: "bytes", Option: FlagMaxResponseBytes, Size: size})
}

// readBounded reads r to its end into a buffer of size bytes (when known),
// failing with an error of kind TooLarge past max bytes (negative: no
// limit). Other errors are those of reading r.
func readBounded(r io.Reader, size, max int64) ([]byte, error) {
	var buf bytes.Buffer
	if max >= 0 && size > max {
		size = max
	}
	if size > 0 {
		buf.Grow(int(size) + 1) // +1: reading to io.EOF needs room
	}
	br := &boundedReader{r: r, max: max}
	_, err := buf.ReadFrom(br)
	if br.limitErr != nil {
		return nil, br.limitErr
	}
	if err != nil {
		return nil, withKind(transportKind(err), fmt.Errorf("reading the answer: %w", err))
	}
	return buf.Bytes(), nil
}

// readErrorBody reads the start of an error answer's body, at most
// errorBodyBytes and at most max (when not negative). A failure to read
// it leaves what came: the status is the error.
func readErrorBody(r io.Reader, max int64) []byte {
	n := int64(errorBodyBytes)
	if max >= 0 && max < n {
		n = max
	}
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(io.LimitReader(r, n))
	return buf.Bytes()
}
