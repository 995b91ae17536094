package dev.fjord.it;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;

/**
 * One real fjord broker process: free loopback ports, a temporary data dir,
 * {@code fjord serve --data-dir D --listen 127.0.0.1:P --http-listen 127.0.0.1:P2}, ready once a
 * Kafka Admin describeCluster call returns a node, stopped with SIGTERM.
 */
public final class FjordBroker implements AutoCloseable {
    private static final Duration START_TIMEOUT = Duration.ofSeconds(30);
    private static final Duration STOP_TIMEOUT = Duration.ofSeconds(30);

    private final List<String> extraFlags;
    private final Path root;
    private final Path dataDir;
    private final Path logFile;
    private final int port;
    private final int httpPort;
    private Process process;

    /**
     * Oracle mode: FJORD_TEST_EXTERNAL_BOOTSTRAP=host:port points every test at an already running
     * broker (e.g. Apache Kafka from scripts/kafka-ref) instead of starting fjord, and
     * FJORD_TEST_EXTERNAL_DATA_DIR names its log dir. Fjord-only assertions are skipped then.
     */
    public static String externalBootstrap() {
        String b = System.getenv("FJORD_TEST_EXTERNAL_BOOTSTRAP");
        return b == null || b.isBlank() ? null : b.strip();
    }

    public static boolean isExternal() {
        return externalBootstrap() != null;
    }

    public FjordBroker(String... extraFlags) {
        this.extraFlags = List.of(extraFlags);
        if (isExternal()) {
            String ext = externalBootstrap();
            this.root = null;
            String dd = System.getenv("FJORD_TEST_EXTERNAL_DATA_DIR");
            this.dataDir = dd == null ? null : Paths.get(dd);
            this.logFile = null;
            this.port = Integer.parseInt(ext.substring(ext.lastIndexOf(':') + 1));
            this.httpPort = -1;
            return;
        }
        try {
            this.root = Files.createTempDirectory("fjord-java-");
            this.dataDir = Files.createDirectories(root.resolve("data"));
            this.logFile = root.resolve("fjord.log");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        this.port = freePort();
        this.httpPort = freePort();
    }

    public static String binary() {
        String b = System.getProperty("fjord.bin");
        if (b == null || b.isBlank() || b.startsWith("${")) {
            b = System.getenv("FJORD_BIN");
        }
        if (b == null || b.isBlank()) {
            // tests/java -> repo root
            b = Paths.get("").toAbsolutePath().resolve("../../target/release/fjord").normalize().toString();
        }
        return Paths.get(b).toAbsolutePath().normalize().toString();
    }

    static int freePort() {
        try (ServerSocket s = new ServerSocket()) {
            s.setReuseAddress(true);
            s.bind(new InetSocketAddress("127.0.0.1", 0));
            return s.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public String bootstrap() {
        return isExternal() ? externalBootstrap() : "127.0.0.1:" + port;
    }

    public int port() {
        return port;
    }

    public int httpPort() {
        return httpPort;
    }

    public Path dataDir() {
        return dataDir;
    }

    public List<String> argv() {
        List<String> argv = new ArrayList<>(List.of(binary(), "serve",
                "--data-dir", dataDir.toString(),
                "--listen", bootstrap(),
                "--http-listen", "127.0.0.1:" + httpPort));
        argv.addAll(extraFlags);
        return argv;
    }

    public FjordBroker start() {
        if (isExternal()) {
            waitReady();
            return this;
        }
        Path bin = Paths.get(binary());
        if (!Files.isExecutable(bin)) {
            throw new IllegalStateException("fjord binary not found/executable at " + bin + " (set FJORD_BIN)");
        }
        ProcessBuilder pb = new ProcessBuilder(argv());
        Map<String, String> env = pb.environment();
        // FJORD_* variables would change the broker's defaults (clap env): drop them
        env.keySet().removeIf(k -> k.startsWith("FJORD_"));
        env.putIfAbsent("RUST_BACKTRACE", "1");
        pb.redirectErrorStream(true);
        pb.redirectOutput(ProcessBuilder.Redirect.appendTo(logFile.toFile()));
        pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        try {
            process = pb.start();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        waitReady();
        return this;
    }

    private void waitReady() {
        long deadline = System.nanoTime() + START_TIMEOUT.toNanos();
        // 1) TCP accept
        while (true) {
            checkAlive("while starting");
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 500);
                break;
            } catch (IOException e) {
                // not yet
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("fjord did not accept TCP on " + bootstrap() + "\n" + logTail(60));
            }
            sleepQuietly(20);
        }
        // 2) a real Kafka client's describeCluster sees a node
        Exception last = null;
        try (Admin admin = admin()) {
            while (true) {
                checkAlive("while waiting for describeCluster");
                try {
                    var nodes = admin.describeCluster(new DescribeClusterOptions().timeoutMs(2000))
                            .nodes().get(3, TimeUnit.SECONDS);
                    if (!nodes.isEmpty()) {
                        return;
                    }
                } catch (Exception e) {
                    last = e;
                }
                if (System.nanoTime() > deadline) {
                    throw new AssertionError("fjord not ready (describeCluster) within " + START_TIMEOUT
                            + ", last: " + last + "\n" + logTail(60));
                }
                sleepQuietly(50);
            }
        }
    }

    private void checkAlive(String when) {
        if (isExternal()) {
            return;
        }
        if (process != null && !process.isAlive()) {
            throw new AssertionError("fjord exited with code " + process.exitValue() + " " + when + "\n" + logTail(60));
        }
    }

    public boolean alive() {
        return isExternal() || process != null && process.isAlive();
    }

    public Properties clientProps() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap());
        return p;
    }

    public Admin admin() {
        Properties p = clientProps();
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "20000");
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        return Admin.create(p);
    }

    /** SIGTERM, wait for a graceful exit; returns the exit code. */
    public int stop() {
        if (process == null) {
            return 0;
        }
        process.destroy(); // SIGTERM on Unix
        try {
            if (!process.waitFor(STOP_TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(10, TimeUnit.SECONDS);
                throw new AssertionError("fjord did not exit within " + STOP_TIMEOUT + " of SIGTERM\n" + logTail(40));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return process.exitValue();
    }

    /**
     * Whether {@link #kill9()} + {@link #restart()} work: always for a fjord we started; for an
     * external (oracle) broker only when it is scripts/kafka-ref's (its DIR/server.properties next to
     * the data dir; kill -9 of DIR/pid, restart with scripts/kafka-ref start DIR).
     */
    public boolean canKill() {
        return !isExternal() || externalRefDir() != null;
    }

    /** scripts/kafka-ref's DIR of the external broker (FJORD_TEST_EXTERNAL_DATA_DIR = DIR/data), or null. */
    private Path externalRefDir() {
        if (dataDir == null || dataDir.getParent() == null) {
            return null;
        }
        Path dir = dataDir.getParent();
        return Files.isRegularFile(dir.resolve("server.properties")) && Files.isExecutable(kafkaRef()) ? dir : null;
    }

    private static Path kafkaRef() {
        return Paths.get("").toAbsolutePath().resolve("../../scripts/kafka-ref").normalize();
    }

    /** SIGKILL (kill -9): no shutdown at all. Returns once the process is gone. */
    public void kill9() {
        if (isExternal()) {
            Path dir = externalRefDir();
            if (dir == null) {
                throw new IllegalStateException("cannot kill the external broker " + bootstrap());
            }
            try {
                long pid = Long.parseLong(Files.readString(dir.resolve("pid")).strip());
                ProcessHandle h = ProcessHandle.of(pid).orElseThrow(() -> new AssertionError("kafka pid " + pid + " is not running"));
                h.destroyForcibly();
                h.onExit().get(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                throw new AssertionError("kill -9 of the external broker failed: " + e, e);
            }
            return;
        }
        if (process == null || !process.isAlive()) {
            throw new AssertionError("fjord is not running\n" + logTail(40));
        }
        process.destroyForcibly(); // SIGKILL on Unix
        try {
            if (!process.waitFor(30, TimeUnit.SECONDS)) {
                throw new AssertionError("fjord survived SIGKILL for 30 s");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        appendLog("\n===== [test] fjord killed with SIGKILL (exit " + process.exitValue() + ") =====\n");
    }

    /** SIGTERM and a clean exit (exit code 0), to be followed by {@link #restart()}. */
    public void stopGracefully() {
        if (isExternal()) {
            Path dir = externalRefDir();
            if (dir == null) {
                throw new IllegalStateException("cannot stop the external broker " + bootstrap());
            }
            try {
                Process p = new ProcessBuilder(kafkaRef().toString(), "stop", dir.toString())
                        .redirectErrorStream(true).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                        .start();
                String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0) {
                    throw new AssertionError("scripts/kafka-ref stop " + dir + " failed:\n" + out);
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
            return;
        }
        int rc = stop();
        appendLog("\n===== [test] fjord stopped with SIGTERM (exit " + rc + ") =====\n");
        if (rc != 0) {
            throw new AssertionError("fjord exited " + rc + " after SIGTERM\n" + logTail(40));
        }
    }

    /**
     * Starts the broker again on the same data dir and ports (after {@link #kill9()} or
     * {@link #stop()}) and waits until it is ready.
     */
    public FjordBroker restart() {
        if (isExternal()) {
            Path dir = externalRefDir();
            if (dir == null) {
                throw new IllegalStateException("cannot restart the external broker " + bootstrap());
            }
            try {
                Process p = new ProcessBuilder(kafkaRef().toString(), "start", dir.toString())
                        .redirectErrorStream(true).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                        .start();
                String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0) {
                    throw new AssertionError("scripts/kafka-ref start " + dir + " failed:\n" + out);
                }
                if (!out.strip().endsWith(bootstrap())) {
                    throw new AssertionError("kafka restarted on another address: " + out + " (was " + bootstrap() + ")");
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
            waitReady();
            return this;
        }
        if (process != null && process.isAlive()) {
            throw new IllegalStateException("fjord is still running");
        }
        appendLog("\n===== [test] fjord restarted on the same data dir and ports =====\n");
        return start();
    }

    private void appendLog(String line) {
        if (logFile == null) {
            return;
        }
        try {
            Files.writeString(logFile, line, StandardCharsets.UTF_8,
                    java.nio.file.StandardOpenOption.CREATE, java.nio.file.StandardOpenOption.APPEND);
        } catch (IOException ignored) {
            // only a marker
        }
    }

    private static String serveHelp;

    /**
     * {@code flag value} if this fjord binary's {@code serve --help} lists the flag, else nothing
     * (a flag a test only uses to go faster; an older binary still runs the test, slower).
     */
    public static synchronized String[] flagIfSupported(String flag, String value) {
        if (isExternal()) {
            return new String[0];
        }
        if (serveHelp == null) {
            try {
                Process p = new ProcessBuilder(binary(), "serve", "--help").redirectErrorStream(true).start();
                serveHelp = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                p.waitFor(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                serveHelp = "";
            }
        }
        if (serveHelp.contains(flag)) {
            return new String[] {flag, value};
        }
        System.err.println("note: " + binary() + " serve has no " + flag + " (the test runs with its default)");
        return new String[0];
    }

    public String logText() {
        if (logFile == null) {
            return "(external broker " + bootstrap() + ")";
        }
        try {
            return Files.exists(logFile) ? Files.readString(logFile, StandardCharsets.UTF_8) : "";
        } catch (IOException e) {
            return "(cannot read " + logFile + ": " + e + ")";
        }
    }

    public String logTail(int lines) {
        String[] all = logText().split("\n", -1);
        int from = Math.max(0, all.length - lines);
        StringBuilder sb = new StringBuilder("----- fjord log tail (" + logFile + ") -----\n");
        for (int i = from; i < all.length; i++) {
            sb.append(all[i]).append('\n');
        }
        return sb.append("----- end of fjord log -----").toString();
    }

    @Override
    public void close() {
        try {
            stop();
        } finally {
            if (root != null) {
                deleteTree(root);
            }
        }
    }

    private static void deleteTree(Path p) {
        if (!Files.exists(p)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(p)) {
            walk.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException ignored) {
            // best effort
        }
    }

    static void sleepQuietly(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
