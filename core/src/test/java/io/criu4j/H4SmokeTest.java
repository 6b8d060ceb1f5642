package io.criu4j;

import io.criu4j.testing.FakeCriu;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;

class H4SmokeTest {
  @Test
  void smoke() throws Exception {
    try (FakeCriu fake = FakeCriu.start()) {
      Criu criu = Criu.builder().binary(fake.binary()).timeout(Duration.ofSeconds(10)).build();
      long t0 = System.nanoTime();
      System.out.println("version " + criu.version());
      long t1 = System.nanoTime();
      Path dir = Files.createTempDirectory("h4");
      fake.enqueue(FakeCriu.Script.succeed());
      criu.dump(dir, CriuOptions.builder().pid(1).build());
      long t2 = System.nanoTime();
      fake.enqueue(FakeCriu.Script.crash());
      try { criu.dump(dir, CriuOptions.builder().pid(1).build()); } catch (Exception e) { System.out.println("crash: " + e); }
      long t3 = System.nanoTime();
      System.out.println("times " + (t1-t0)/1e6 + " " + (t2-t1)/1e6 + " " + (t3-t2)/1e6);
      System.out.println(fake.errors());
    }
  }
}
