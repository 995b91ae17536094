package dev.fjord.it;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Runs one of Kafka's command-line tools exactly as its kafka-*.sh wrapper would: its main class
 * in a fresh JVM ({@code java -cp <the Maven test class path> MainClass args}), stdin fed from a
 * string, stdout/stderr captured, bounded by a timeout.
 */
public final class Tool {
    // The main classes of the kafka-*.sh scripts in Kafka 4.4 (bin/*.sh -> kafka-run-class.sh).
    public static final String TOPICS = "org.apache.kafka.tools.TopicCommand";
    public static final String CONSOLE_PRODUCER = "org.apache.kafka.tools.ConsoleProducer";
    public static final String CONSOLE_CONSUMER = "org.apache.kafka.tools.consumer.ConsoleConsumer";
    public static final String CONSUMER_GROUPS = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand";
    public static final String CONFIGS = "org.apache.kafka.tools.ConfigCommand";
    public static final String GET_OFFSETS = "org.apache.kafka.tools.GetOffsetShell";
    public static final String DELETE_RECORDS = "org.apache.kafka.tools.DeleteRecordsCommand";
    public static final String LOG_DIRS = "org.apache.kafka.tools.LogDirsCommand";
    public static final String PRODUCER_PERF = "org.apache.kafka.tools.ProducerPerformance";
    public static final String CONSUMER_PERF = "org.apache.kafka.tools.ConsumerPerformance";

    private Tool() {
    }

    public static final class Result {
        public final List<String> argv;
        public final int exit;
        public final String out;
        public final String err;

        Result(List<String> argv, int exit, String out, String err) {
            this.argv = argv;
            this.exit = exit;
            this.out = out;
            this.err = err;
        }

        /** Fails unless the tool exited 0. */
        public Result ok() {
            if (exit != 0) {
                throw new AssertionError("tool exited " + exit + ": " + this);
            }
            return this;
        }

        public List<String> lines() {
            List<String> ls = new ArrayList<>();
            for (String l : out.split("\n")) {
                if (!l.isBlank()) {
                    ls.add(l.strip());
                }
            }
            return ls;
        }

        @Override
        public String toString() {
            return String.join(" ", argv.subList(argv.indexOf("-cp") + 2, argv.size())) + "\n--- exit " + exit
                    + "\n--- stdout:\n" + out + "\n--- stderr:\n" + err;
        }
    }

    private static String classPath;

    /** The jars of the Maven test class path (no directories: CDS needs jars only, and the tools need no test class). */
    public static synchronized String classPath() {
        if (classPath == null) {
            String cp = System.getProperty("surefire.test.class.path");
            if (cp == null || cp.isBlank()) {
                cp = System.getProperty("java.class.path");
            }
            List<String> jars = new ArrayList<>();
            for (String e : cp.split(File.pathSeparator)) {
                if (e.endsWith(".jar") && new File(e).isFile() && !e.contains("surefire")) {
                    jars.add(e);
                }
            }
            classPath = String.join(File.pathSeparator, jars);
        }
        return classPath;
    }

    private static boolean cdsDumped;

    /**
     * Class-data sharing halves each tool JVM's start-up: the first tool run of the test JVM dumps
     * the classes it loaded into target/ (keyed by the class path), later runs map that archive.
     * A missing or stale archive only costs time (-Xshare:auto, logging off).
     */
    private static synchronized List<String> cdsFlags() {
        if (Boolean.getBoolean("fjord.tools.nocds")) {
            return List.of();
        }
        java.nio.file.Path dir = Paths.get("target").toAbsolutePath();
        java.nio.file.Path jsa = dir.resolve("tools-cds-" + Integer.toHexString(classPath().hashCode())
                + "-" + Runtime.version().feature() + ".jsa");
        if (java.nio.file.Files.isRegularFile(jsa)) {
            return List.of("-Xshare:auto", "-XX:SharedArchiveFile=" + jsa);
        }
        if (!cdsDumped && java.nio.file.Files.isDirectory(dir)) {
            cdsDumped = true;
            return List.of("-Xshare:auto", "-XX:ArchiveClassesAtExit=" + jsa);
        }
        return List.of("-Xshare:auto");
    }

    public static Result run(String mainClass, String... args) {
        return runWithInput(mainClass, null, args);
    }

    public static Result runWithInput(String mainClass, String stdin, String... args) {
        String java = Paths.get(System.getProperty("java.home"), "bin", "java").toString();
        List<String> argv = new ArrayList<>(List.of(java,
                "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xss1m", "-Xmx256m",
                "-Djava.awt.headless=true", "-Xlog:disable", "-Xlog:all=off",
                // slf4j-simple: only errors, on stderr (the tools' own output is on stdout)
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=error", "-Dorg.slf4j.simpleLogger.logFile=System.err"));
        argv.addAll(cdsFlags());
        argv.addAll(List.of("-cp", classPath(), mainClass));
        argv.addAll(Arrays.asList(args));
        ProcessBuilder pb = new ProcessBuilder(argv);
        pb.environment().remove("JAVA_TOOL_OPTIONS");
        pb.environment().remove("KAFKA_OPTS");
        if (stdin == null) {
            pb.redirectInput(new File("/dev/null"));
        }
        try {
            Process p = pb.start();
            CompletableFuture<String> out = drain(p.getInputStream());
            CompletableFuture<String> err = drain(p.getErrorStream());
            if (stdin != null) {
                try (OutputStream in = p.getOutputStream()) {
                    in.write(stdin.getBytes(StandardCharsets.UTF_8));
                }
            }
            if (!p.waitFor(90, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                p.waitFor(10, TimeUnit.SECONDS);
                throw new AssertionError("tool did not finish within 90 s: " + new Result(argv, -1,
                        out.getNow("?"), err.getNow("?")));
            }
            return new Result(argv, p.exitValue(), out.get(10, TimeUnit.SECONDS), err.get(10, TimeUnit.SECONDS));
        } catch (IOException e) {
            throw new AssertionError("cannot start " + mainClass + ": " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
            throw new AssertionError(e);
        }
    }

    private static CompletableFuture<String> drain(InputStream in) {
        return CompletableFuture.supplyAsync(() -> {
            try (in) {
                return new String(in.readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                return "(read error " + e + ")";
            }
        }, r -> {
            Thread t = new Thread(r, "tool-drain");
            t.setDaemon(true);
            t.start();
        });
    }

    /** Splits the whitespace-aligned table rows the tools print whose first column is {@code first}. */
    public static List<String[]> rows(String out, String first) {
        List<String[]> rows = new ArrayList<>();
        for (String l : out.split("\n")) {
            String[] cols = l.strip().split("\\s+");
            if (cols.length > 0 && cols[0].equals(first)) {
                rows.add(cols);
            }
        }
        return rows;
    }
}
