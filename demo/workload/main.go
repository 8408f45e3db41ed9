// The shop's workload on a real node: one small static HTTP server whose troubles are set by
// environment variables, so the kernel and the kubelet (not a simulator) make the faults. The
// variables are those of demo/kind/manifests/shop.yaml's svc.py, so both real clusters play the
// same shop:
//
//	PORT          port to serve on (8080)
//	LATENCY_MS    mean time to answer, exponentially distributed (5; 0 answers at once)
//	ERROR_PCT     share of requests answered 500
//	BURN_MS       CPU time spent per request in a busy loop (a CPU limit then throttles it)
//	LEAK_MB_MIN   memory kept per minute, touched so it is resident (a memory limit then OOM-kills)
//	EXIT_AFTER_S  exit 1 after this long, with a fatal line on stderr (a crash loop)
//	CALLS         comma-separated URLs called per request; a failed call answers 502
//	UNREADY_EVERY_S, UNREADY_FOR_S
//	              the readiness check (/healthz) answers 503 for the last UNREADY_FOR_S seconds of
//	              every UNREADY_EVERY_S (readiness flapping: the endpoint comes and goes)
//
// Two more modes by first argument: `pause` is the pod sandbox's process (the image containerd's
// sandbox_image names), `load URL[,URL…]` sends LOAD_RPS requests a second to the URLs (the
// shop's customers, sending real traffic through the gateway).
package main

import (
	"fmt"
	"io"
	"math"
	"math/rand"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

func envFloat(name string, fallback float64) float64 {
	v := os.Getenv(name)
	if v == "" {
		return fallback
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		fmt.Fprintf(os.Stderr, "workload: %s=%q is not a number\n", name, v)
		os.Exit(2)
	}
	return f
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// pause waits for a termination signal, as the pause image's process does.
func pause() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}

var client = &http.Client{Timeout: 5 * time.Second}

func fetch(url string) (int, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// load sends rps requests a second, round-robin over the URLs, each on its own goroutine so a
// slow upstream does not slow the customers down; a line a minute says what it got.
func load(urls []string, rps float64) {
	if len(urls) == 0 || rps <= 0 {
		fmt.Fprintln(os.Stderr, "workload load: needs URLs and LOAD_RPS > 0")
		os.Exit(2)
	}
	var mu sync.Mutex
	counts := map[int]int{}
	tick := time.NewTicker(time.Duration(float64(time.Second) / rps))
	report := time.NewTicker(time.Minute)
	for i := 0; ; i++ {
		select {
		case <-tick.C:
			url := urls[i%len(urls)]
			go func() {
				code, _ := fetch(url)
				mu.Lock()
				counts[code]++
				mu.Unlock()
			}()
		case <-report.C:
			mu.Lock()
			fmt.Printf("load: status counts in the last minute %v\n", counts)
			counts = map[int]int{}
			mu.Unlock()
		}
	}
}

// burn spends d of this thread's CPU time, not of the wall clock: under a CPU limit the time
// the kernel holds the process back must not count, or the throttling would shorten its own
// work and how throttled payment looks would depend on the machine's speed.
func burn(d time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	end := threadCPUTime() + d
	x := 0
	for threadCPUTime() < end {
		for i := 0; i < 1000; i++ {
			x += i
		}
	}
	_ = x
}

// threadCPUTime is CLOCK_THREAD_CPUTIME_ID: the CPU this OS thread has used.
func threadCPUTime() time.Duration {
	const clockThreadCPUTimeID = 3
	var ts syscall.Timespec
	_, _, _ = syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

var kept [][]byte

// leak keeps mbPerMin of touched memory a minute, in one-second steps, until the memory cgroup
// kills the process.
func leak(mbPerMin float64) {
	step := int(mbPerMin * 1024 * 1024 / 60)
	for range time.Tick(time.Second) {
		b := make([]byte, step)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		kept = append(kept, b)
	}
}

func serve() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	latency := envFloat("LATENCY_MS", 5)
	errorPct := envFloat("ERROR_PCT", 0)
	burnMs := envFloat("BURN_MS", 0)
	calls := splitList(os.Getenv("CALLS"))
	if mb := envFloat("LEAK_MB_MIN", 0); mb > 0 {
		go leak(mb)
	}
	if secs := envFloat("EXIT_AFTER_S", 0); secs > 0 {
		go func() {
			time.Sleep(time.Duration(secs * float64(time.Second)))
			fmt.Fprintln(os.Stderr, "fatal: cannot reach the mail relay")
			os.Exit(1)
		}()
	}
	started := time.Now()
	unreadyEvery, unreadyFor := envFloat("UNREADY_EVERY_S", 0), envFloat("UNREADY_FOR_S", 0)
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if unreadyEvery > 0 && math.Mod(time.Since(started).Seconds(), unreadyEvery) >= unreadyEvery-unreadyFor {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready\n"))
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		if burnMs > 0 {
			burn(time.Duration(burnMs * float64(time.Millisecond)))
		}
		if latency > 0 {
			time.Sleep(time.Duration(rand.ExpFloat64() * latency * float64(time.Millisecond)))
		}
		for _, url := range calls {
			if code, err := fetch(url); err != nil || code >= 500 {
				w.WriteHeader(http.StatusBadGateway)
				_, _ = w.Write([]byte("downstream failed\n"))
				return
			}
		}
		if rand.Float64()*100 < errorPct {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("error\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	fmt.Printf("workload: serving on :%s (latency %gms, errors %g%%, burn %gms, calls %v)\n",
		port, latency, errorPct, burnMs, calls)
	go func() {
		pause()
		os.Exit(0)
	}()
	if err := http.ListenAndServe(":"+port, nil); err != nil {
		fmt.Fprintf(os.Stderr, "workload: %v\n", err)
		os.Exit(1)
	}
}

func main() {
	switch {
	case len(os.Args) > 1 && os.Args[1] == "pause":
		pause()
	case len(os.Args) > 1 && os.Args[1] == "load":
		urls := []string{}
		if len(os.Args) > 2 {
			urls = splitList(os.Args[2])
		}
		load(urls, envFloat("LOAD_RPS", 10))
	default:
		serve()
	}
}
