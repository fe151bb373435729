#pragma once
// `fc25 denoise IN OUT [options]`: denoises an audio file with the streaming engine.
namespace fc25::app {
// argv[0] is "denoise". Returns the process exit code.
int run_denoise_command(int argc, char** argv);
}  // namespace fc25::app
