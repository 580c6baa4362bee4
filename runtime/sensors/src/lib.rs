//! Camera (V4L2), microphone (ALSA) and recordings (audio.wav + frames/<ms>.jpg): the glasses loop's inputs
