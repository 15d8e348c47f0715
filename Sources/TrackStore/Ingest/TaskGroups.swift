import Foundation

/// The task groups of one lm-evaluation-harness evaluation: `group_subtasks` of its results
/// file, group → direct members (tasks or groups), to any depth. 0.4.2 also lists plain tasks
/// with no members; those are not groups.
struct TaskGroups {
    /// Each group's direct members, in the results file's order.
    let members: [(group: String, members: [String])]
    private let index: [String: [String]]
    /// Each member's group (the first that lists it).
    private let parent: [String: String]

    init(_ json: JSONValue) {
        members = (json["group_subtasks"]?.objectValue?.entries ?? []).compactMap { entry in
            let list = (entry.value.arrayValue ?? []).compactMap(\.stringValue)
            return list.isEmpty ? nil : (entry.key, list)
        }
        var index: [String: [String]] = [:], parent: [String: String] = [:]
        for (group, list) in members {
            if index[group] == nil { index[group] = list }
            for member in list where parent[member] == nil { parent[member] = group }
        }
        self.index = index
        self.parent = parent
    }

    var isEmpty: Bool { members.isEmpty }

    /// Every group and member named.
    var allTasks: [String] { members.map(\.group) + members.flatMap(\.members) }


    /// The tasks below `group` (members that are not groups), depth first in member order;
    /// a group met twice (a cycle in a hand-edited file) is not walked again.
    func leaves(of group: String) -> [String] {
        var result: [String] = [], seen: Set<String> = [group]
        var stack: [String] = (index[group] ?? []).reversed()
        while let next = stack.popLast() {
            if let list = index[next] {
                if seen.insert(next).inserted { stack.append(contentsOf: list.reversed()) }
            } else if !result.contains(next) {
                result.append(next)
            }
        }
        return result
    }

    /// The groups from a top-level one down to the task's parent ([] for a task in no group).
    func path(to task: String) -> [String] {
        var path: [String] = [], seen: Set<String> = []
        var current = task
        while let up = parent[current], seen.insert(up).inserted {
            path.insert(up, at: 0)
            current = up
        }
        return path
    }

    /// A task's subject: the task config's `dataset_name` (MMLU's `abstract_algebra`), else the
    /// task's name less the longest of its groups' names that prefixes it (`mmlu_` of
    /// `mmlu_abstract_algebra`).
    func subject(of task: String, json: JSONValue) -> String {
        if let name = json["configs"]?[task]?["dataset_name"]?.stringValue, !name.isEmpty { return name }
        let prefix = path(to: task).filter { task.hasPrefix($0 + "_") && task.count > $0.count + 1 }.max { $0.count < $1.count }
        return prefix.map { Self.strip(task, prefix: $0) } ?? task
    }

    /// A task's category within `top`: the group just below `top` that holds it, by its alias
    /// when the harness gives one (`stem`), else its name less `top` as a prefix; nil for a
    /// task directly in `top`.
    func category(of task: String, top: String, json: JSONValue) -> String? {
        let path = path(to: task)
        guard let position = path.firstIndex(of: top), position + 1 < path.count else { return nil }
        let group = path[position + 1]
        let alias = (json["groups"]?[group]?["alias"] ?? json["results"]?[group]?["alias"])?.stringValue
            .map { $0.drop(while: { $0 == " " || $0 == "-" }) }.map(String.init)
        if let alias, !alias.isEmpty, alias != group { return alias }
        return Self.strip(group, prefix: top)
    }

    private static func strip(_ name: String, prefix: String) -> String {
        name.hasPrefix(prefix + "_") && name.count > prefix.count + 1 ? String(name.dropFirst(prefix.count + 1)) : name
    }
}
