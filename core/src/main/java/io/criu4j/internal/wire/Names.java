package io.criu4j.internal.wire;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * The rules for file and tunnel names: a single relative path component of 1 to 255 bytes of
 * UTF-8, not {@code .} or {@code ..}, without {@code /}, NUL or any other control character.
 */
final class Names {
  static final int MAX_NAME_BYTES = 255;

  private Names() {}

  /**
   * Checks a name a local caller wants to send.
   *
   * @return its UTF-8 bytes
   * @throws IllegalArgumentException naming the name and the rule it breaks
   */
  static byte[] checkLocal(String name) {
    if (name == null) {
      throw new IllegalArgumentException("name is null");
    }
    byte[] bytes = name.getBytes(StandardCharsets.UTF_8);
    String problem = problem(name, bytes.length);
    if (problem != null) {
      throw new IllegalArgumentException("bad name " + quote(name) + ": " + problem);
    }
    return bytes;
  }

  /**
   * Decodes and checks a name that arrived from the peer.
   *
   * @throws WireProtocolException ({@link ErrorCode#BAD_NAME}) naming the name and the rule
   */
  static String decodeRemote(String what, ByteBuffer utf8) throws WireProtocolException {
    int length = utf8.remaining();
    String name;
    try {
      CharsetDecoder decoder =
          StandardCharsets.UTF_8
              .newDecoder()
              .onMalformedInput(CodingErrorAction.REPORT)
              .onUnmappableCharacter(CodingErrorAction.REPORT);
      CharBuffer chars = decoder.decode(utf8);
      name = chars.toString();
    } catch (CharacterCodingException e) {
      throw new WireProtocolException(
          ErrorCode.BAD_NAME, "bad " + what + " name: not valid UTF-8 (" + length + " bytes)");
    }
    String problem = problem(name, length);
    if (problem != null) {
      throw new WireProtocolException(
          ErrorCode.BAD_NAME, "bad " + what + " name " + quote(name) + ": " + problem);
    }
    return name;
  }

  private static String problem(String name, int byteLength) {
    if (name.isEmpty()) {
      return "empty";
    }
    if (byteLength > MAX_NAME_BYTES) {
      return "longer than " + MAX_NAME_BYTES + " bytes (" + byteLength + ")";
    }
    if (name.equals(".") || name.equals("..")) {
      return "'" + name + "' is not a file name";
    }
    if (name.charAt(0) == '/') {
      return "absolute path";
    }
    for (int i = 0; i < name.length(); i++) {
      char c = name.charAt(i);
      if (c == '/') {
        return "contains '/' (must be a single path component)";
      }
      if (c == 0) {
        return "contains NUL";
      }
      if (c < 0x20 || c == 0x7F) {
        return String.format("contains control character 0x%02x", (int) c);
      }
    }
    return null;
  }

  /** The name in double quotes, with control characters escaped and long names cut. */
  static String quote(String name) {
    StringBuilder sb = new StringBuilder(Math.min(name.length(), 80) + 2).append('"');
    for (int i = 0; i < name.length(); i++) {
      if (sb.length() > 80) {
        sb.append("...");
        break;
      }
      char c = name.charAt(i);
      if (c < 0x20 || c == 0x7F) {
        sb.append(String.format("\\x%02x", (int) c));
      } else if (c == '"' || c == '\\') {
        sb.append('\\').append(c);
      } else {
        sb.append(c);
      }
    }
    return sb.append('"').toString();
  }
}
