import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension TranscriptExport {
    /// Writes `text` to `path` and makes it durable; a failed write (no space, no permission)
    /// throws a one-line error naming the file.
    public static func write(_ text: String, to path: String) throws(ChatError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ChatError(path, "cannot open for writing (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ChatError(path, "write failed (\(String(cString: strerror(errno))))")
            }
            done += n
        }
        if fsync(fd) != 0 && errno != EINVAL && errno != EROFS {
            throw ChatError(path, "fsync failed (\(String(cString: strerror(errno))))")
        }
    }
}

extension SessionSummary {
    /// `yyyy-MM-dd HH:mm`, local time: the session list's date.
    public static func dateText(_ t: Double) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd HH:mm"
        return f.string(from: Date(timeIntervalSince1970: t))
    }
}
