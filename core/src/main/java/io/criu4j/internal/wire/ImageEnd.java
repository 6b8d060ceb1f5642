package io.criu4j.internal.wire;

/**
 * The end of an image (one set of files): its index (0, 1, ... per connection), the number of
 * files and their total size. On the receiver, {@link MuxConnection#accept()} returns it once
 * every file of the image arrived with the right size and checksum; the receiver then calls
 * {@link MuxConnection#acknowledgeImage(ImageEnd)}. On the sender,
 * {@link MuxConnection#endImage()} returns the acknowledged totals.
 */
public record ImageEnd(int image, int fileCount, long totalBytes) implements Inbound {}
