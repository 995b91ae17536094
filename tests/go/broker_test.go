// Package fjordtest drives the real fjord binary with Go Kafka clients
// (franz-go kgo + kadm, IBM sarama). Kafka's behaviour is the oracle.
//
// TestMain starts one shared broker (unique topics/groups per test keep tests
// independent); startBroker starts extra ones when a test needs its own.
package fjordtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Broker is one running `fjord serve` process.
type Broker struct {
	Addr     string // Kafka listener, host:port
	HTTPAddr string
	DataDir  string
	LogPath  string
	args     []string
	tmp      string
	cmd      *exec.Cmd
	logFile  *os.File
	exited   chan struct{}
	exitErr  error
	kafkaDir string // an external Kafka started by scripts/kafka-ref in this dir (restartable)
}

var shared *Broker

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

func fjordBin() (string, error) {
	b := os.Getenv("FJORD_BIN")
	if b == "" {
		// tests/go -> repo root
		wd, _ := os.Getwd()
		b = filepath.Join(wd, "..", "..", "target", "release", "fjord")
	}
	abs, err := filepath.Abs(b)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("fjord binary not found/executable at %s (set FJORD_BIN)", abs)
	}
	return abs, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startBroker starts a broker with a fresh data dir and free ports and waits
// until a Metadata request through franz-go succeeds.
func startBroker(extra ...string) (*Broker, error) {
	bin, err := fjordBin()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "fjord-go-test-")
	if err != nil {
		return nil, err
	}
	b := &Broker{tmp: tmp, DataDir: filepath.Join(tmp, "data"), LogPath: filepath.Join(tmp, "fjord.log")}
	if err := os.MkdirAll(b.DataDir, 0o755); err != nil {
		return nil, err
	}
	p1, err := freePort()
	if err != nil {
		return nil, err
	}
	p2, err := freePort()
	if err != nil {
		return nil, err
	}
	b.Addr = fmt.Sprintf("127.0.0.1:%d", p1)
	b.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", p2)
	args := append([]string{"serve", "--data-dir", b.DataDir, "--listen", b.Addr, "--http-listen", b.HTTPAddr}, extra...)
	b.logFile, err = os.Create(b.LogPath)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(b.logFile, "===== %s %s =====\n", bin, strings.Join(args, " "))
	b.args = args
	if err := b.spawn(bin); err != nil {
		return nil, err
	}
	if err := b.waitReady(30 * time.Second); err != nil {
		tail := b.LogTail(60)
		b.Stop()
		return nil, fmt.Errorf("%v\n%s", err, tail)
	}
	return b, nil
}

// Restart stops the broker with SIGTERM and starts it again on the same
// ports and data dir.
func (b *Broker) Restart() error {
	if b.kafkaDir != "" {
		return b.restartKafka()
	}
	if err := b.Stop(); err != nil {
		return fmt.Errorf("stop before restart: %w", err)
	}
	bin, err := fjordBin()
	if err != nil {
		return err
	}
	b.logFile, err = os.OpenFile(b.LogPath, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(b.logFile, "===== restart: %s %s =====\n", bin, strings.Join(b.args, " "))
	if err := b.spawn(bin); err != nil {
		return err
	}
	return b.waitReady(30 * time.Second)
}

// restartKafka: scripts/kafka-ref stop + start on the same directory (same port, same data).
func (b *Broker) restartKafka() error {
	wd, _ := os.Getwd()
	script := filepath.Join(wd, "..", "..", "scripts", "kafka-ref")
	if out, err := exec.Command(script, "stop", b.kafkaDir).CombinedOutput(); err != nil {
		return fmt.Errorf("kafka-ref stop: %v\n%s", err, out)
	}
	out, err := exec.Command(script, "start", b.kafkaDir).Output()
	if err != nil {
		return fmt.Errorf("kafka-ref start: %v", err)
	}
	if addr := strings.TrimSpace(string(out)); !strings.HasSuffix(addr, b.Addr) {
		return fmt.Errorf("kafka-ref restarted on %q, not %s", addr, b.Addr)
	}
	b.exited = make(chan struct{}) // never closed: not our process
	return b.waitReady(90 * time.Second)
}

func (b *Broker) spawn(bin string) error {
	b.cmd = exec.Command(bin, b.args...)
	b.cmd.Stdout = b.logFile
	b.cmd.Stderr = b.logFile
	// FJORD_* variables would change the broker's defaults: drop them.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FJORD_") {
			b.cmd.Env = append(b.cmd.Env, kv)
		}
	}
	b.cmd.Env = append(b.cmd.Env, "RUST_BACKTRACE=1", "NO_COLOR=1")
	if err := b.cmd.Start(); err != nil {
		return err
	}
	b.exited = make(chan struct{})
	go func() { b.exitErr = b.cmd.Wait(); close(b.exited) }()
	return nil
}

func (b *Broker) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-b.exited:
			return fmt.Errorf("fjord exited while starting: %v", b.exitErr)
		default:
		}
		c, err := net.DialTimeout("tcp", b.Addr, 500*time.Millisecond)
		if err != nil {
			last = err
			time.Sleep(20 * time.Millisecond)
			continue
		}
		c.Close()
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr))
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
		cancel()
		cl.Close()
		if err == nil && len(md.Brokers) > 0 {
			return nil
		}
		last = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("fjord not ready on %s within %v (last: %v)", b.Addr, timeout, last)
}

// Stop sends SIGTERM and waits for a clean exit (SIGKILL after 30 s).
func (b *Broker) Stop() error {
	if b.cmd == nil || b.cmd.Process == nil {
		return nil
	}
	select {
	case <-b.exited:
	default:
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.exited:
		case <-time.After(30 * time.Second):
			_ = b.cmd.Process.Kill()
			<-b.exited
			return errors.New("fjord did not stop within 30s of SIGTERM (killed)")
		}
	}
	if b.logFile != nil {
		b.logFile.Close()
		b.logFile = nil
	}
	return b.exitErr
}

// Cleanup removes the broker's temp dir.
func (b *Broker) Cleanup() { os.RemoveAll(b.tmp) }

// LogTail returns the last n lines of the broker log.
func (b *Broker) LogTail(n int) string {
	data, err := os.ReadFile(b.LogPath)
	if err != nil {
		return fmt.Sprintf("(no fjord log: %v)", err)
	}
	data = ansi.ReplaceAll(data, nil)
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return fmt.Sprintf("----- fjord log tail (%s) -----\n%s\n-----", b.LogPath, bytes.Join(lines, []byte("\n")))
}

// external is true when GO_TEST_BOOTSTRAP names an already running broker
// (e.g. Apache Kafka from scripts/kafka-ref, see `GO_TEST_KAFKA=1 tests/go/run`):
// the tests then run against it to validate what they expect; tests that need
// their own fjord (ownBroker) are skipped.
var external bool

// sharedFlags: --transaction-abort-interval-ms 200 when this fjord has the flag,
// so that a timed-out transaction is aborted within ~0.2 s of its timeout.
func sharedFlags() []string {
	bin, err := fjordBin()
	if err != nil {
		return nil
	}
	out, _ := exec.Command(bin, "serve", "--help").CombinedOutput()
	if bytes.Contains(out, []byte("--transaction-abort-interval-ms")) {
		return []string{"--transaction-abort-interval-ms", "200"}
	}
	return nil
}

func TestMain(m *testing.M) {
	if os.Getenv("SARAMA_LOG") != "" { // SARAMA_LOG=1: sarama's logger on stderr
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Lmicroseconds)
	}
	if addr := os.Getenv("GO_TEST_BOOTSTRAP"); addr != "" {
		external = true
		shared = &Broker{Addr: addr, LogPath: os.Getenv("GO_TEST_BROKER_LOG"), kafkaDir: os.Getenv("GO_TEST_KAFKA_DIR")}
		fmt.Fprintf(os.Stderr, "tests/go: running against the external broker %s\n", addr)
		code := m.Run()
		if code != 0 && shared.LogPath != "" {
			fmt.Fprintln(os.Stderr, shared.LogTail(80))
		}
		os.Exit(code)
	}
	var err error
	shared, err = startBroker(sharedFlags()...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot start fjord: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := shared.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "fjord did not stop cleanly: %v\n%s\n", err, shared.LogTail(60))
		if code == 0 {
			code = 1
		}
	}
	if code != 0 {
		fmt.Fprintln(os.Stderr, shared.LogTail(80))
	}
	shared.Cleanup()
	os.Exit(code)
}

// ---------------------------------------------------------------------------
// helpers

var nameSeq atomic.Int64

// uniq returns a name unique within this run (topics, groups, ids).
func uniq(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1_000_000_000, nameSeq.Add(1))
}

// attachLog prints the broker's log tail when the test fails.
func attachLog(t *testing.T, b *Broker) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			t.Log("\n" + b.LogTail(40))
		}
	})
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newClient returns a franz-go client on the shared broker, closed at cleanup.
func newClient(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	return newClientOn(t, shared, opts...)
}

func newClientOn(t *testing.T, b *Broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := baseOpts(t, b)
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// newAdmin: kadm answers metadata questions from the client's metadata cache
// (MetadataMinAge, default 5 s); a short age lets tests see changes at once.
// baseOpts: seed broker plus, with KGO_LOG=debug|info|warn, franz-go's log on stderr.
func baseOpts(t *testing.T, b *Broker) []kgo.Opt {
	base := []kgo.Opt{kgo.SeedBrokers(b.Addr)}
	if lvl := os.Getenv("KGO_LOG"); lvl != "" {
		l := map[string]kgo.LogLevel{"debug": kgo.LogLevelDebug, "info": kgo.LogLevelInfo, "warn": kgo.LogLevelWarn}[lvl]
		name := t.Name()
		base = append(base, kgo.WithLogger(kgo.BasicLogger(os.Stderr, l, func() string {
			return time.Now().Format("15:04:05.000 ") + name + " "
		})))
	}
	return base
}

func newAdmin(t *testing.T) *kadm.Client {
	t.Helper()
	return kadm.NewClient(newClient(t, kgo.MetadataMinAge(50*time.Millisecond)))
}

// setup attaches the shared broker log to failures and returns an admin client.
func setup(t *testing.T) *kadm.Client {
	t.Helper()
	attachLog(t, shared)
	return newAdmin(t)
}

// createTopic creates a unique topic with n partitions and returns its name.
func createTopic(t *testing.T, adm *kadm.Client, partitions int32, configs map[string]*string) string {
	t.Helper()
	name := uniq("go")
	resp, err := adm.CreateTopic(ctxT(t, 15*time.Second), partitions, 1, configs, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("CreateTopic %s: %v / %v", name, err, resp.Err)
	}
	return name
}

// waitFor polls cond until it is true or the timeout expires.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// consumeN reads records from the given partitions starting at the given
// offsets until it has n records, failing on timeout.
func consumeN(t *testing.T, offsets map[string]map[int32]kgo.Offset, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl := newClient(t, append([]kgo.Opt{kgo.ConsumePartitions(offsets), kgo.FetchMaxWait(200 * time.Millisecond)}, opts...)...)
	return pollN(t, cl, n, 20*time.Second)
}

// consumeAll reads n records of a topic from the start of every partition.
func consumeAll(t *testing.T, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := newClient(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	return pollN(t, cl, n, 20*time.Second)
}

func pollN(t *testing.T, cl *kgo.Client, n int, timeout time.Duration) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d of %d records before timeout", len(out), n)
		}
		fs.EachError(func(topic string, p int32, err error) {
			t.Fatalf("fetch %s/%d: %v", topic, p, err)
		})
		out = append(out, fs.Records()...)
	}
	return out
}

// syncMap is a tiny typed concurrent map used by group tests.
type syncSet[K comparable] struct {
	mu sync.Mutex
	m  map[K]int
}

func (s *syncSet[K]) add(k K) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[K]int{}
	}
	s.m[k]++
}

func (s *syncSet[K]) snapshot() map[K]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[K]int, len(s.m))
	for k, v := range s.m {
		out[k] = v
	}
	return out
}

// ownBroker starts a broker for this test only (stopped and removed at cleanup).
func ownBroker(t *testing.T, flags ...string) *Broker {
	t.Helper()
	if external {
		if shared.kafkaDir != "" && len(flags) == 0 {
			attachLog(t, shared)
			return shared // the run script's Kafka, restartable through scripts/kafka-ref
		}
		t.Skip("needs its own fjord broker (GO_TEST_BOOTSTRAP is set)")
	}
	b, err := startBroker(flags...)
	if err != nil {
		t.Fatalf("start fjord: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Stop(); err != nil {
			t.Errorf("fjord did not stop cleanly: %v", err)
		}
		if t.Failed() {
			t.Log("\n" + b.LogTail(60))
		}
		b.Cleanup()
	})
	return b
}
