package testutil

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RedisServer is a throwaway redis-server started by a test, with no
// persistence, listening on a free loopback port.
type RedisServer struct {
	// Addr is host:port, on 127.0.0.1.
	Addr string
	Port int
	// Dir is the server's working directory (its log is Dir/redis.log).
	Dir string

	cmd      *exec.Cmd
	done     chan struct{}
	stopOnce sync.Once
}

// redisStartTimeout bounds the wait for a new server to answer PING.
const redisStartTimeout = 10 * time.Second

// RedisBinary returns the path of redis-server, skipping the test (or
// failing it in CI, see SkipOrFail) when it is not installed.
func RedisBinary(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		SkipOrFail(t, "redis-server not installed (make deps installs it): %v", err)
	}
	return path
}

// StartRedis starts redis-server on a free loopback port, without
// --daemonize so that the test owns the process, with --save "" and
// --appendonly no, and waits until it answers PING. Extra arguments are
// appended to the command line ("--requirepass", "x", …). The server is
// stopped (SIGTERM, then SIGKILL) when the test ends.
func StartRedis(t testing.TB, args ...string) *RedisServer {
	t.Helper()
	bin := RedisBinary(t)
	var lastErr error
	// A port found free can be taken by someone else before the server
	// binds it; try a few.
	for range 5 {
		port, err := freePort(false)
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		s, err := startRedis(t, bin, port, args)
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("start redis-server: %v", lastErr)
	return nil
}

// startRedis starts one server; pre are arguments that must come first
// (a config file, then --sentinel).
func startRedis(t testing.TB, bin string, port int, args []string, pre ...string) (*RedisServer, error) {
	dir, err := os.MkdirTemp("", "papyra-redis-")
	if err != nil {
		return nil, err
	}
	argv := append(pre, "--bind", "127.0.0.1", "--port", strconv.Itoa(port))
	argv = append(argv, []string{
		"--save", "", "--appendonly", "no", "--dir", dir,
		"--logfile", filepath.Join(dir, "redis.log"),
	}...)
	argv = append(argv, args...)
	cmd := exec.Command(bin, argv...)
	// Own process group: a SIGINT to the test does not reach the server
	// before the cleanup does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &RedisServer{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Port: port, Dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.Stop()
		os.RemoveAll(dir)
	})
	if err := s.waitPing(redisStartTimeout); err != nil {
		s.Stop()
		log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
		return nil, fmt.Errorf("%s: %w\n%s", s.Addr, err, lastLines(string(log), 10))
	}
	return s, nil
}

// waitPing waits until the server answers PING with PONG (or NOAUTH,
// which also proves it is serving).
func (s *RedisServer) waitPing(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("redis-server exited during start-up")
		default:
		}
		var reply string
		if reply, err = RedisCommand(s.Addr, "PING"); err == nil &&
			(reply == "+PONG" || strings.HasPrefix(reply, "-NOAUTH")) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("no PONG within %s: %v", timeout, err)
}

// Stop terminates the server (SIGTERM, then SIGKILL after 5 s) and waits
// for it. It is idempotent; tests call it to simulate Redis going down.
func (s *RedisServer) Stop() {
	s.stopOnce.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(5 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	})
}

// Kill kills the server with SIGKILL, as a crash would, and waits for it.
func (s *RedisServer) Kill() {
	s.stopOnce.Do(func() {
		_ = s.cmd.Process.Kill()
		<-s.done
	})
}

// RedisCommand sends one inline command to addr and returns the first
// line of the reply ("+PONG", "-ERR …", ":1", "$5" for bulk strings). It
// needs no client library, so helpers can use it before any client works.
func RedisCommand(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

// RedisCluster is a throwaway Redis Cluster of masters without replicas,
// on loopback.
type RedisCluster struct {
	// Addrs are the masters' host:port addresses.
	Addrs []string
	Nodes []*RedisServer
}

// StartRedisCluster starts n cluster-enabled redis-servers (n >= 3), joins
// them with `redis-cli --cluster create … --cluster-replicas 0`, and waits
// until every node reports cluster_state:ok. Everything stops when the
// test ends.
func StartRedisCluster(t testing.TB, n int) *RedisCluster {
	t.Helper()
	bin := RedisBinary(t)
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		SkipOrFail(t, "redis-cli not installed (make deps installs it): %v", err)
	}
	c := &RedisCluster{}
	for range n {
		var s *RedisServer
		var lastErr error
		for range 5 {
			// The cluster bus listens on port+10000: both must be free.
			port, err := freePort(true)
			if err != nil {
				t.Fatalf("find a free port pair: %v", err)
			}
			if s, lastErr = startRedis(t, bin, port, []string{
				"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", "2000",
			}); lastErr == nil {
				break
			}
		}
		if s == nil {
			t.Fatalf("start cluster node: %v", lastErr)
		}
		c.Nodes = append(c.Nodes, s)
		c.Addrs = append(c.Addrs, s.Addr)
	}
	args := append(append([]string{"--cluster", "create"}, c.Addrs...), "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, s := range c.Nodes {
		for {
			out, err := exec.Command(cli, "-h", "127.0.0.1", "-p", strconv.Itoa(s.Port), "cluster", "info").Output()
			if err == nil && strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster node %s not ok: %v\n%s", s.Addr, err, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// freePort returns a loopback TCP port that was free a moment ago; with
// bus, port+10000 was free too.
func freePort(bus bool) (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !bus {
			l.Close()
			return port, nil
		}
		if port+10000 > 65535 {
			l.Close()
			continue
		}
		l2, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+10000)))
		l.Close()
		if err != nil {
			continue
		}
		l2.Close()
		return port, nil
	}
	return 0, fmt.Errorf("no free port pair on 127.0.0.1")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// StartRedisSentinel starts a Sentinel (redis-server --sentinel) that
// monitors the master at masterAddr under name, and waits until it
// answers for it. It stops when the test ends.
func StartRedisSentinel(t testing.TB, name, masterAddr string) *RedisServer {
	t.Helper()
	bin := RedisBinary(t)
	host, port, err := net.SplitHostPort(masterAddr)
	if err != nil {
		t.Fatal(err)
	}
	var lastErr error
	for range 5 {
		p, err := freePort(false)
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		// Sentinel rewrites its config file: it must be its own, writable.
		conf := filepath.Join(t.TempDir(), "sentinel.conf")
		body := fmt.Sprintf("sentinel monitor %s %s %s 1\nsentinel down-after-milliseconds %s 1000\n", name, host, port, name)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := startRedis(t, bin, p, nil, conf, "--sentinel")
		if err == nil {
			return s
		}
		lastErr = err
	}
	t.Fatalf("start redis sentinel: %v", lastErr)
	return nil
}
