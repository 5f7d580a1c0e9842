import Testing
@testable import Engine

/// The benchmark's own instruments: the bandwidth probe reports one (best-of-repeats) figure per
/// pass, and the median is the middle value.
@Suite struct MeasureTests {
    @Test func probeRecordsOnePositiveFigurePerPass() {
        let probe = BandwidthProbe(bytes: 8 << 20, pool: ThreadPool(threads: 2))
        let a = probe.pass(), b = probe.pass(repeats: 1)
        #expect(probe.passes == [a, b])
        #expect(a > 1e8 && b > 1e8)          // any machine reads 8 MiB faster than 100 MB/s
        #expect(probe.byteSize == 8 << 20)
    }

    @Test func medianIsTheMiddle() {
        #expect(median([]) == 0)
        #expect(median([3, 1, 2]) == 2)
        #expect(median([4, 1, 3, 2]) == 2.5)
    }
}
