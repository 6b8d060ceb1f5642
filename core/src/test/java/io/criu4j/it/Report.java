package io.criu4j.it;

import org.junit.jupiter.api.TestReporter;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Publishes a measured fact both to JUnit (report entries) and to the build log. */
final class Report {
  private static final Logger log = LoggerFactory.getLogger("io.criu4j.it");

  private Report() {}

  static void fact(TestReporter reporter, String key, String value) {
    reporter.publishEntry(key, value);
    log.info("{}: {}", key, value);
  }
}
