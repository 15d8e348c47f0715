import Foundation

/// A bounded queue between one producer thread and one consumer thread.
/// The producer finishes with an outcome; either side may stop early.
final class BlockingQueue<Element: Sendable, Outcome: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Element] = []
    private var finished = false
    private var result: Result<Outcome, any Error>?
    private var cancelled = false
    private let capacity: Int

    init(capacity: Int = 8) { self.capacity = capacity }

    /// Adds an item, waiting while the queue is full; false once the consumer has cancelled.
    func push(_ item: Element) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while items.count >= capacity && !cancelled { condition.wait() }
        if cancelled { return false }
        items.append(item)
        condition.broadcast()
        return true
    }

    /// The producer is done, with its outcome or an error.
    func finish(_ outcome: Result<Outcome, any Error>) {
        condition.lock()
        result = outcome
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// The next item, or nil when the producer has finished and the queue is empty.
    func pop() -> Element? {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty && !finished { condition.wait() }
        if items.isEmpty { return nil }
        let item = items.removeFirst()
        condition.broadcast()
        return item
    }

    /// The next item, waiting at most `seconds`: `.item`, `.timedOut` (nothing yet), or `.finished`
    /// (the producer is done and the queue is empty).
    enum Popped { case item(Element), timedOut, finished }
    func pop(waitingAtMost seconds: Double) -> Popped {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: seconds)
        while items.isEmpty && !finished {
            if !condition.wait(until: deadline) { break }
        }
        if items.isEmpty { return finished ? .finished : .timedOut }
        let item = items.removeFirst()
        condition.broadcast()
        return .item(item)
    }

    /// The consumer has stopped listening.
    var isCancelled: Bool {
        condition.lock()
        defer { condition.unlock() }
        return cancelled
    }

    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    /// Waits for the producer's outcome.
    func outcome() -> Result<Outcome, any Error> {
        condition.lock()
        defer { condition.unlock() }
        while !finished { condition.wait() }
        return result!
    }
}
