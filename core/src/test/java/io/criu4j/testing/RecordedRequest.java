package io.criu4j.testing;

import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import com.google.protobuf.TextFormat;
import io.criu4j.internal.rpc.CriuRpc.Request;
import java.nio.file.Path;

/**
 * A request the {@link FakeCriu} received, for assertions. Field names are those of CRIU's RPC
 * protocol ({@code leave_running}, {@code images_dir_fd}, ...).
 */
public final class RecordedRequest {
  private final Request request;
  private final FakeCriu.Connection connection;
  private final Path imagesDir;

  RecordedRequest(Request request, FakeCriu.Connection connection, Path imagesDir) {
    this.request = request;
    this.connection = connection;
    this.imagesDir = imagesDir;
  }

  /**
   * The directory the request's {@code images_dir_fd} referred to in the client's descriptor
   * table when the request arrived, as CRIU would open it; null if there was none or it was not
   * an open descriptor of the client.
   */
  public Path imagesDir() {
    return imagesDir;
  }

  /** The request type's protocol name: {@code DUMP}, {@code VERSION}, {@code NOTIFY}, ... */
  public String type() {
    return request.getType().name();
  }

  public boolean keepOpen() {
    return request.getKeepOpen();
  }

  public boolean notifySuccess() {
    return request.getNotifySuccess();
  }

  /** The {@code pid} field of the request itself (WAIT_PID). */
  public int pid() {
    return request.getPid();
  }

  public boolean hasOptions() {
    return request.hasOpts();
  }

  /** True if option {@code name} was sent. */
  public boolean hasOption(String name) {
    FieldDescriptor f = field(name);
    return f.isRepeated() ? request.getOpts().getRepeatedFieldCount(f) > 0
        : request.getOpts().hasField(f);
  }

  /**
   * The value of option {@code name}: Boolean, Integer, String, an enum value's name, a list for
   * repeated fields, or the text form of a nested message; null if not sent.
   */
  public Object option(String name) {
    FieldDescriptor f = field(name);
    if (!hasOption(name)) {
      return null;
    }
    return simplify(request.getOpts().getField(f));
  }

  private static Object simplify(Object value) {
    if (value instanceof com.google.protobuf.Descriptors.EnumValueDescriptor e) {
      return e.getName();
    }
    if (value instanceof Message m) {
      return TextFormat.printer().shortDebugString(m);
    }
    if (value instanceof java.util.List<?> list) {
      return list.stream().map(RecordedRequest::simplify).toList();
    }
    return value;
  }

  /** Names the features a FEATURE_CHECK asked for, in text form, or "" if none. */
  public String features() {
    return request.hasFeatures() ? TextFormat.printer().shortDebugString(request.getFeatures())
        : "";
  }

  private FieldDescriptor field(String name) {
    FieldDescriptor f = request.getOpts().getDescriptorForType().findFieldByName(name);
    if (f == null) {
      throw new IllegalArgumentException("no such CRIU option: " + name);
    }
    return f;
  }

  /** The fake CRIU process that received it. */
  public FakeCriu.Connection connection() {
    return connection;
  }

  /** The whole request in protobuf text form. */
  public String text() {
    return TextFormat.printer().printToString(request);
  }

  @Override
  public String toString() {
    return TextFormat.printer().shortDebugString(request);
  }

  Request proto() {
    return request;
  }
}
