import Foundation
import Prometheus

/// The server's Prometheus metrics (`GET /metrics`, text format 0.0.4):
///
///     yanyi_requests_total{route,status}      HTTP requests answered
///     yanyi_errors_total{code}                error answers and failed generations, by OpenAI error code
///     yanyi_prompt_tokens_total               prompt tokens of the generations run
///     yanyi_generated_tokens_total            tokens generated
///     yanyi_generations_cancelled_total       generations ended because the client went away
///     yanyi_queue_length                      generations waiting for an engine
///     yanyi_requests_in_flight                requests being answered now
///     yanyi_time_to_first_token_seconds       from the request's arrival to its first token (queue wait and prefill included)
///     yanyi_batch_steps_total                 forward steps of the batch scheduler (one per step, all its sequences)
///     yanyi_batch_step_sequences              histogram: sequences per step (decoding or prefilling a chunk)
///     yanyi_batch_sequences_running           sequences in the batch after the last step
public final class ServeMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let promptTokens: Counter
    let generatedTokens: Counter
    let cancelled: Counter
    let queueLength: Gauge
    let inFlight: Gauge
    let timeToFirstToken: DurationHistogram
    let batchSteps: Counter
    let batchStepSequences: ValueHistogram
    let batchRunning: Gauge

    private static func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "yanyi", metricName: metric, unitName: unit, helpText: help)
    }

    static var requestsName: MetricNameDescriptor { name("requests", "total", "HTTP requests answered, by route and status.") }
    static var errorsName: MetricNameDescriptor { name("errors", "total", "Error answers and failed generations, by OpenAI error code.") }

    public init() {
        promptTokens = registry.makeCounter(descriptor: Self.name("prompt_tokens", "total", "Prompt tokens of the generations run."))
        generatedTokens = registry.makeCounter(descriptor: Self.name("generated_tokens", "total", "Tokens generated."))
        cancelled = registry.makeCounter(descriptor: Self.name("generations_cancelled", "total",
                                                                "Generations ended early because the client went away."))
        queueLength = registry.makeGauge(descriptor: Self.name("queue_length", "", "Generations waiting for an engine."))
        inFlight = registry.makeGauge(descriptor: Self.name("requests_in_flight", "", "Requests being answered now."))
        timeToFirstToken = registry.makeDurationHistogram(
            descriptor: Self.name("time_to_first_token", "seconds", "From the request's arrival to its first token (queue and prefill included)."),
            labels: [],
            buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120].map { Duration.milliseconds(Int64($0 * 1000)) })
        batchSteps = registry.makeCounter(descriptor: Self.name("batch_steps", "total", "Forward steps of the batch scheduler (one per step for all its sequences)."))
        batchStepSequences = registry.makeValueHistogram(
            descriptor: Self.name("batch_step_sequences", "", "Sequences per forward step (decoding, or prefilling a chunk of their prompt)."),
            buckets: [1, 2, 4, 8, 16, 32, 64])
        batchRunning = registry.makeGauge(descriptor: Self.name("batch_sequences_running", "", "Sequences in the batch after the last step."))
    }

    /// One step of the batch scheduler: `ran` sequences in it, `running` still in the batch after.
    public func batchStep(ran: Int, running: Int) {
        batchSteps.increment()
        batchStepSequences.record(Double(ran))
        batchRunning.set(Double(running))
    }

    func request(route: String, status: Int) {
        registry.makeCounter(descriptor: Self.requestsName, labels: [("route", route), ("status", String(status))]).increment()
    }

    func error(_ code: String?) {
        registry.makeCounter(descriptor: Self.errorsName, labels: [("code", code ?? "unknown")]).increment()
    }

    func firstToken(after seconds: Double) {
        timeToFirstToken.record(Duration.nanoseconds(Int64(max(seconds, 0) * 1e9)))
    }

    /// The text exposition.
    public func text() -> String { registry.emitToString() }
}
