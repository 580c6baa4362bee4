//! ONNX models beside the decoder: Silero voice activity and PP-OCRv4 text detection and recognition, through tract
