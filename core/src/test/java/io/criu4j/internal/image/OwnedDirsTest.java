package io.criu4j.internal.image;

import static org.assertj.core.api.Assertions.assertThat;

import io.criu4j.internal.posix.ProcStat;
import io.criu4j.testing.TmpfsDir;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.OptionalLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("OwnedDirs: directories named after their owner, reclaimed once it is gone")
class OwnedDirsTest {
  private static final String PREFIX = "criu4j-test-";
  private TmpfsDir parent;

  @BeforeEach
  void setUp() throws Exception {
    parent = TmpfsDir.create("criu4j-owned-");
  }

  @AfterEach
  void tearDown() {
    parent.close();
  }

  /** A directory as a process with this tag would have left it, with a file inside. */
  private Path leftBy(String tag) throws Exception {
    Path d = Files.createDirectory(parent.path().resolve(PREFIX + tag + "-x"));
    Files.writeString(d.resolve("pages-1.img"), "data");
    Files.createDirectory(d.resolve("sub"));
    return d;
  }

  private static long ourStartTime() throws Exception {
    OptionalLong t = ProcStat.startTime(Paths.get("/proc"), ProcessHandle.current().pid());
    assertThat(t).isPresent();
    return t.getAsLong();
  }

  @Test
  @DisplayName("create names the directory after this process's pid and start time")
  void createdDirectoryCarriesThisProcesssTag() throws Exception {
    Path d = OwnedDirs.create(parent.path(), PREFIX);

    assertThat(d).isDirectory().isEmptyDirectory();
    long[] owner = OwnedDirs.parseOwner(d.getFileName().toString(), PREFIX);
    assertThat(owner).containsExactly(ProcessHandle.current().pid(), ourStartTime());
    assertThat(OwnedDirs.create(parent.path(), PREFIX)).isNotEqualTo(d);
  }

  @Test
  @DisplayName("reclaim deletes what a process that no longer runs left, contents and all")
  void reclaimDeletesTheDirectoriesOfEndedOwners() throws Exception {
    Process p = new ProcessBuilder("true").start();
    long deadPid = p.pid();
    long deadStart = ProcStat.startTime(Paths.get("/proc"), deadPid).orElse(1);
    p.waitFor();
    p.destroy();
    Path gone = leftBy(deadPid + "." + deadStart);
    Path reusedPid = leftBy(ProcessHandle.current().pid() + "." + (ourStartTime() + 1));

    assertThat(OwnedDirs.reclaim(parent.path(), PREFIX)).containsExactlyInAnyOrder(gone, reusedPid);

    assertThat(gone).doesNotExist();
    assertThat(reusedPid).as("our pid, another start time: a reused pid").doesNotExist();
  }

  @Test
  @DisplayName("reclaim leaves live owners' directories, other names and plain files alone")
  void reclaimLeavesEverythingElse() throws Exception {
    Path ours = OwnedDirs.create(parent.path(), PREFIX);
    Path initsDir = leftBy("1." + ProcStat.startTime(Paths.get("/proc"), 1).orElseThrow());
    Path unparsable = Files.createDirectory(parent.path().resolve(PREFIX + "abc.def-x"));
    Path noStart = Files.createDirectory(parent.path().resolve(PREFIX + "123-x"));
    Path otherPrefix = Files.createDirectory(parent.path().resolve("criu4j-other-999999.1-x"));
    Path file = Files.writeString(parent.path().resolve(PREFIX + "999999.1-file"), "x");

    assertThat(OwnedDirs.reclaim(parent.path(), PREFIX)).isEmpty();

    assertThat(ours).isDirectory();
    assertThat(initsDir).isDirectory();
    assertThat(unparsable).isDirectory();
    assertThat(noStart).isDirectory();
    assertThat(otherPrefix).isDirectory();
    assertThat(file).isRegularFile();
  }

  @Test
  @DisplayName("reclaim in a parent that does not exist finds nothing and does not throw")
  void reclaimInAMissingParentIsEmpty() {
    assertThat(OwnedDirs.reclaim(parent.path().resolve("missing"), PREFIX)).isEmpty();
  }

  @Test
  @DisplayName("owner tags parse only as PREFIX PID.STARTTIME-REST")
  void parseOwnerAcceptsOnlyTheTagFormat() {
    assertThat(OwnedDirs.parseOwner(PREFIX + "12.34-rest", PREFIX)).containsExactly(12, 34);
    assertThat(OwnedDirs.parseOwner(PREFIX + "12.34-", PREFIX)).containsExactly(12, 34);
    assertThat(OwnedDirs.parseOwner(PREFIX + "12.34", PREFIX)).isNull();
    assertThat(OwnedDirs.parseOwner(PREFIX + ".34-x", PREFIX)).isNull();
    assertThat(OwnedDirs.parseOwner(PREFIX + "12.-x", PREFIX)).isNull();
    assertThat(OwnedDirs.parseOwner(PREFIX + "0.34-x", PREFIX)).isNull();
    assertThat(OwnedDirs.parseOwner(PREFIX + "-1.34-x", PREFIX)).isNull();
    assertThat(OwnedDirs.parseOwner("other-12.34-x", PREFIX)).isNull();
    assertThat(OwnedDirs.parseOwner(PREFIX + "proxy-12.34-x", "criu4j-")).isNull();
  }
}
