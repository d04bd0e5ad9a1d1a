package watch

import "runtime"

func yield() { runtime.Gosched() }
