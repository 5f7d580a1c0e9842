import Foundation

extension SessionSummary {
    /// `yyyy-MM-dd HH:mm`, local time: how every session list shows a date.
    public static func dateText(_ t: Double) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.dateFormat = "yyyy-MM-dd HH:mm"
        return f.string(from: Date(timeIntervalSince1970: t))
    }
}
