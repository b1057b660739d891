// Package klogtest captures klog's output in tests.
package klogtest

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"

	"k8s.io/klog/v2"
)

// Buffer is a bytes.Buffer safe for klog's and the test's goroutines.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written.
func (s *Buffer) String() string {
	klog.Flush()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Capture sends klog's output at verbosity v to the returned buffer until
// the test ends.
func Capture(t testing.TB, v int) *Buffer {
	t.Helper()
	var fs flag.FlagSet
	klog.InitFlags(&fs)
	set := func(name, value string) {
		if err := fs.Set(name, value); err != nil {
			t.Fatal(err)
		}
	}
	buf := &Buffer{}
	set("logtostderr", "false")
	set("alsologtostderr", "false")
	set("v", fmt.Sprint(v))
	klog.SetOutput(buf)
	t.Cleanup(func() {
		klog.Flush()
		set("v", "0")
		set("logtostderr", "true")
		klog.SetOutput(os.Stderr)
	})
	return buf
}
