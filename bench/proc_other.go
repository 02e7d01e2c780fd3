//go:build !linux

package bench

import "os/exec"

// setParentDeathSignal does nothing outside Linux.
func setParentDeathSignal(*exec.Cmd) {}

// flushDisks does nothing outside Linux.
func flushDisks() {}
