// Package memlimit gives the Go runtime a soft memory limit below the
// container's, so that garbage left by a burst of requests is collected
// before the kernel kills the process for it.
//
// promgate bounds what it keeps (the memory budget, the answers in flight),
// but the garbage a burst of requests leaves (rewritten and printed
// queries, decoded answers) is only collected when the heap doubles, by
// default: under overload, a heap whose live part fits the Deployment's
// limit can still pass it. With a soft limit the collector runs harder as
// the heap nears it (https://go.dev/doc/gc-guide#Memory_limit).
package memlimit

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// Files of the container's memory limit under the cgroup file system root:
// cgroup v2, then v1.
var limitFiles = []string{"memory.max", "memory/memory.limit_in_bytes"}

// unlimited is above any real limit: cgroup v1 writes a page-rounded
// maximum int64 for "no limit".
const unlimited = 1 << 60

// Container returns the memory limit of the container promgate runs in,
// read under root (/sys/fs/cgroup), and the file it came from; 0 when
// there is none.
func Container(root string) (int64, string, error) {
	for _, f := range limitFiles {
		path := filepath.Join(root, f)
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, path, err
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, path, nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, path, fmt.Errorf("%s: %w", path, err)
		}
		if n <= 0 || n >= unlimited {
			return 0, path, nil
		}
		return n, path, nil
	}
	return 0, "", nil
}

// Set gives the runtime a soft memory limit of ratio times the container's
// limit read under root, unless GOMEMLIMIT is set (the runtime then has
// the operator's) or ratio is 0 or there is no limit. It returns the limit
// set (0: none) and where the container's came from.
func Set(root string, ratio float64) (int64, string, error) {
	if ratio <= 0 || os.Getenv("GOMEMLIMIT") != "" {
		return 0, "", nil
	}
	if ratio > 1 {
		return 0, "", fmt.Errorf("memory limit ratio %v: want at most 1", ratio)
	}
	limit, from, err := Container(root)
	if err != nil || limit == 0 {
		return 0, from, err
	}
	soft := int64(math.Floor(float64(limit) * ratio))
	debug.SetMemoryLimit(soft)
	return soft, from, nil
}
