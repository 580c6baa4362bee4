//! Speech recognition: Whisper from a CTranslate2 model folder (model.bin, config.json, tokenizer.json)
