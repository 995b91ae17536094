package dev.fjord.it;

import org.junit.jupiter.api.Assumptions;

/**
 * A known difference between Fjord and Apache Kafka, kept as a test: the body asserts Kafka's
 * behaviour. While the body fails the test is reported as SKIPPED with "FJORD BUG: ..." (so the
 * suite stays green but the gap stays visible); once Fjord is fixed the body passes and we say so
 * loudly. With FJORD_BUGS_STRICT=1 a fixed bug fails the test (remove the marker then), and
 * with FJORD_BUGS_STRICT=fail a known bug fails too.
 */
public final class FjordBug {
    private FjordBug() {
    }

    public interface Body {
        void run() throws Throwable;
    }

    /** A difference that has been fixed: the body must pass now; `was` says what Fjord did. */
    public static void fixed(String was, Body body) throws Exception {
        try {
            body.run();
        } catch (Exception | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new AssertionError("regressed: " + was, t);
        }
    }

    public static void expect(String bug, Body body) throws Exception {
        String strict = System.getenv().getOrDefault("FJORD_BUGS_STRICT", "");
        Throwable failure = null;
        try {
            body.run();
        } catch (Throwable t) {
            failure = t;
        }
        if (failure == null) {
            String msg = "XPASS: the FJORD BUG marker is stale, the body passes now: " + bug;
            System.err.println(msg);
            if (strict.equals("1")) {
                throw new AssertionError(msg);
            }
            return;
        }
        if (strict.equals("fail")) {
            throw new AssertionError("FJORD BUG: " + bug, failure);
        }
        System.err.println("FJORD BUG (expected failure): " + bug + "\n    -> " + failure);
        Assumptions.abort("FJORD BUG: " + bug + " -> " + failure);
    }
}
