package io.criu4j.testing;

import io.criu4j.internal.posix.Native;
import io.criu4j.internal.posix.Pipe;
import io.criu4j.internal.posix.UnixSocket;
import java.io.File;
import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The process {@link FakeCriu} runs in place of {@code criu swrk <fd>}: a relay between the swrk
 * socket it inherited and the controlling {@link FakeCriu} in the test JVM, which decides every
 * reply. Being a real child on a real SOCK_SEQPACKET socketpair, it exercises the client's spawn
 * and packet code exactly as CRIU would.
 *
 * <p>Usage: {@code FakeCriuProcess <control-socket> swrk <fd>}.
 */
public final class FakeCriuProcess {
  static final int HELLO = 1;
  static final int PACKET = 2;
  static final int EOF = 3;
  static final int SEND = 10;
  static final int SEND_WITH_FD = 11;
  static final int EXIT = 12;
  static final int CRASH = 13;
  static final int DISCONNECT = 14;

  private FakeCriuProcess() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 3 || !"swrk".equals(args[1])) {
      System.err.println("usage: FakeCriuProcess <control-socket> swrk <fd>");
      System.exit(2);
    }
    int fd = Integer.parseInt(args[2]);
    List<String> fds = openFds();
    UnixSocket swrk = UnixSocket.adopt(fd);
    SocketChannel control = SocketChannel.open(UnixDomainSocketAddress.of(Path.of(args[0])));
    // Channel streams share one lock between reading and writing; frames go straight through
    // the channel so the relay thread can write while the main thread waits for a command.
    SocketChannel out = control;
    String hello = ProcessHandle.current().pid() + "\n"
        + ProcessHandle.current().parent().map(ProcessHandle::pid).orElse(0L) + "\n"
        + String.join("\u0001", fds) + "\n" + String.join("\u0001", args);
    write(out, HELLO, hello.getBytes());

    Thread relay = new Thread(() -> {
      try {
        while (true) {
          UnixSocket.Packet p = swrk.receive(64 << 20);
          if (p == null) {
            write(out, EOF, new byte[0]);
            return;
          }
          write(out, PACKET, p.data());
        }
      } catch (Throwable e) {
        e.printStackTrace();
        try {
          write(out, EOF, new byte[0]);
        } catch (IOException ignored) {
          // the controller is gone as well
        }
      }
    }, "fake-criu-relay");
    relay.setDaemon(true);
    relay.start();

    while (true) {
      int type;
      byte[] data;
      try {
        ByteBuffer header = readFully(control, 8);
        type = header.getInt();
        data = readFully(control, header.getInt()).array();
      } catch (IOException controllerGone) {
        System.exit(0);
        return;
      }
      switch (type) {
        case SEND -> swrk.send(data);
        case SEND_WITH_FD -> {
          try (Pipe pipe = Pipe.open()) {
            swrk.send(data, pipe.readEnd().get());
          }
        }
        case EXIT -> {
          swrk.close();
          System.exit(data.length > 0 ? data[0] : 0);
        }
        case CRASH -> {
          // Die by SIGKILL, as a crashed or OOM-killed CRIU would. (ProcessHandle refuses to
          // destroy the current process, so that cannot be used here.)
          Native.libc().kill(Native.libc().getpid(), Native.SIGKILL);
          Runtime.getRuntime().halt(137);
        }
        case DISCONNECT -> {
          swrk.close();
          System.exit(0);
        }
        default -> throw new IllegalStateException("unknown control frame " + type);
      }
    }
  }

  static void write(SocketChannel out, int type, byte[] data) throws IOException {
    ByteBuffer frame = ByteBuffer.allocate(8 + data.length).putInt(type).putInt(data.length)
        .put(data).flip();
    synchronized (out) {
      while (frame.hasRemaining()) {
        out.write(frame);
      }
    }
  }

  static ByteBuffer readFully(SocketChannel in, int size) throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(size);
    while (buf.hasRemaining()) {
      if (in.read(buf) < 0) {
        throw new java.io.EOFException();
      }
    }
    return buf.flip();
  }

  /** Descriptors open at start, before the JVM's own, as "n->target". */
  private static List<String> openFds() {
    List<String> result = new ArrayList<>();
    File[] entries = new File("/proc/self/fd").listFiles();
    if (entries != null) {
      for (File f : entries) {
        try {
          result.add(f.getName() + "->" + java.nio.file.Files.readSymbolicLink(f.toPath()));
        } catch (IOException e) {
          result.add(f.getName() + "->?");
        }
      }
    }
    return result;
  }
}
