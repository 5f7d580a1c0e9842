import Foundation
@testable import Chat

// A character card PNG (chunks, CRCs, the base64 `chara`/`ccv3` text), then the round trip
// through a persona that `yanyi card import` and `export` make.
enum FuzzCardPNG {
    static func run(_ input: UnsafeRawBufferPointer) {
        let bytes = Array(input)
        guard let card = try? CharacterCard.decode(png: bytes, file: "fuzz.png") else { return }
        FuzzCards.roundTrip(card, image: bytes)
    }
}

enum FuzzCards {
    /// A card that makes a persona is exported again (V2, V3, and a PNG in its own image), as
    /// `yanyi card import` then `export` would.
    static func roundTrip(_ card: CharacterCard, image: [UInt8]?) {
        guard let p = try? card.persona(id: "fuzz", file: "fuzz", group: "cards") else { return }
        _ = CharacterCard(persona: p, spec: .v2).jsonData()
        let v3 = CharacterCard(persona: p, spec: .v3).jsonData()
        guard (try? CharacterCard.decode(json: v3, file: "fuzz (exported)")) != nil else {
            fatalError("an exported card does not read back")
        }
        _ = try? CharacterCard.png(persona: p, image: image, file: "fuzz.png")
    }
}
