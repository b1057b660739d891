package prom

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"golang.org/x/sync/semaphore"
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

	// res, when set, is charged twice the bytes read past reserved.
	res      *reservation
	reserved int64

	// limitErr is the error of the limit exceeded; readErr the first error
	// of r other than io.EOF.
	limitErr, readErr error
}

// Read reads from b.r within the limits (see boundedReader).
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
	if b.res != nil && b.n > b.reserved {
		// Charged in steps of at least 64 KiB, not per read.
		step := max(b.n-b.reserved, valueReadChunk)
		if e := b.res.grow(2 * step); e != nil {
			b.limitErr = e
			return n, e
		}
		b.reserved += step
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

// MaxAnswerBytesInFlight bounds the memory of the answers that every
// client of the process reads and decodes at once: each answer is within
// its own limit (--prometheus-max-response-bytes, 64 MiB), but sixteen
// queries in flight per backend, each of them that large, would be gigabytes.
// An answer is charged twice its bytes while it is read and decoded (the
// text and what is decoded from it); past the limit, it fails as too large
// rather than wait, since answers that wait for memory held by each other
// would never finish.
const MaxAnswerBytesInFlight = 256 << 20

// answerMemory is what MaxAnswerBytesInFlight leaves.
var answerMemory = semaphore.NewWeighted(MaxAnswerBytesInFlight)

// reservation is the memory an answer holds of answerMemory.
type reservation struct{ n int64 }

// grow charges n more bytes, or fails with an error of kind TooLarge.
func (r *reservation) grow(n int64) error {
	if !answerMemory.TryAcquire(n) {
		return withKind(TooLarge, &LimitError{Max: MaxAnswerBytesInFlight, Unit: "bytes", InFlight: true})
	}
	r.n += n
	return nil
}

// release gives the memory back; the answer's text and what was decoded
// from it are then the caller's (and the cache's, within its budget).
func (r *reservation) release() {
	if r.n > 0 {
		answerMemory.Release(r.n)
		r.n = 0
	}
}

// readBounded reads r to its end into a buffer of size bytes (when known),
// failing with an error of kind TooLarge past max bytes (negative: no
// limit) or when res cannot be charged twice what was read. Other errors
// are those of reading r.
func readBounded(r io.Reader, size, max int64, res *reservation) ([]byte, error) {
	var buf bytes.Buffer
	if max >= 0 && size > max {
		size = max
	}
	if size > 0 {
		if err := res.grow(2 * (size + 1)); err != nil {
			return nil, err
		}
		buf.Grow(int(size) + 1) // +1: reading to io.EOF needs room
	}
	br := &boundedReader{r: r, max: max, res: res, reserved: res.n / 2}
	_, err := buf.ReadFrom(br)
	if br.limitErr != nil {
		return nil, br.limitErr
	}
	if err != nil {
		return nil, withKind(transportKind(err), fmt.Errorf("reading the answer: %w", err))
	}
	body := buf.Bytes()
	if n := len(body); n > valueReadChunk && cap(body) > n+n/4 {
		// Decoded label values are slices of the text, which lives as long
		// as they do (in the cache): keep no more than the text.
		body = bytes.Clone(body)
	}
	return body, nil
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
