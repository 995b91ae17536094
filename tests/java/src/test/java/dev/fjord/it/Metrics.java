package dev.fjord.it;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/** Observations of the broker from outside the Kafka protocol: /metrics and the data dir. */
public final class Metrics {
    private Metrics() {
    }

    public static String scrape(FjordBroker b) {
        org.junit.jupiter.api.Assumptions.assumeFalse(FjordBroker.isExternal(), "/metrics is Fjord's");
        try {
            HttpClient c = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
            HttpResponse<String> r = c.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + b.httpPort() + "/metrics"))
                    .timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
            if (r.statusCode() != 200) {
                throw new AssertionError("/metrics returned " + r.statusCode());
            }
            return r.body();
        } catch (IOException e) {
            throw new AssertionError("cannot scrape /metrics: " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /** fjord_requests_total for one API (0 when that API was never called). */
    public static double apiRequests(FjordBroker b, String api) {
        Matcher m = Pattern.compile("(?m)^fjord_requests_total\\{[^}]*api=\"" + Pattern.quote(api) + "\"[^}]*\\}\\s+(\\S+)")
                .matcher(scrape(b));
        double total = 0;
        while (m.find()) {
            total += Double.parseDouble(m.group(1));
        }
        return total;
    }

    /** Bytes in the .log segment files of every partition of a topic. */
    public static long logBytes(FjordBroker b, String topic) {
        org.junit.jupiter.api.Assumptions.assumeTrue(b.dataDir() != null, "the broker's data dir is unknown");
        long total = 0;
        try (Stream<Path> dirs = Files.list(b.dataDir())) {
            for (Path d : (Iterable<Path>) dirs::iterator) {
                String name = d.getFileName().toString();
                int dash = name.lastIndexOf('-');
                if (dash <= 0 || !name.substring(0, dash).equals(topic) || !Files.isDirectory(d)) {
                    continue;
                }
                try (Stream<Path> files = Files.list(d)) {
                    for (Path f : (Iterable<Path>) files::iterator) {
                        if (f.getFileName().toString().endsWith(".log")) {
                            total += Files.size(f);
                        }
                    }
                }
            }
        } catch (IOException e) {
            throw new AssertionError(e);
        }
        return total;
    }

    static String read(InputStream in) throws IOException {
        return new String(in.readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
    }
}
