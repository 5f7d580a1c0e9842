// A shard index (model.safetensors.index.json, pytorch_model.bin.index.json):
// {"metadata": {…}, "weight_map": {tensor: shard file}}. Only weight_map matters here.
struct ShardIndex {
    let path: String
    /// (tensor, shard file name) in the index's order.
    let weightMap: [(tensor: String, shard: String)]
    /// Distinct shard file names, sorted (model-00001-of-00003 … come out in order).
    let shards: [String]

    init(path: String) throws(LoadError) {
        self.path = path
        func fail(_ reason: String) -> LoadError { LoadError(path, reason) }
        let f = try MappedFile(path: path)
        if f.isLFSPointer { throw fail(MappedFile.lfsReason) }
        let root: JSONValue
        do { root = try JSONParser.parse(f.all) } catch {
            if let key = error.duplicateKey {
                throw fail("names \(key.quoted) twice (\(error.description))")
            }
            throw fail("invalid JSON: \(error.description)")
        }
        guard case .object = root else { throw fail("is \(root.kind), not a JSON object") }
        guard case .object(let map)? = root["weight_map"] else { throw fail("has no \"weight_map\" object") }
        var pairs: [(tensor: String, shard: String)] = []
        var shardSet = Set<String>()
        for (tensor, value) in map {
            guard case .string(let shard) = value else {
                throw fail("weight_map entry \(tensor.quoted) is \(value.kind), not a file name")
            }
            // A shard is a file in the model folder, never a path out of it.
            let parts = shard.split(separator: "/", omittingEmptySubsequences: false)
            guard !shard.isEmpty, !shard.hasPrefix("/"), !parts.contains(".."), !parts.contains(""),
                  !shard.contains("\0") else {
                throw fail("weight_map puts tensor \(tensor.quoted) in \(shard.quoted), which is not a file inside the model folder")
            }
            pairs.append((tensor, shard))
            shardSet.insert(shard)
        }
        if pairs.isEmpty { throw fail("weight_map is empty: the index names no tensors") }
        weightMap = pairs
        shards = shardSet.sorted()
    }
}
