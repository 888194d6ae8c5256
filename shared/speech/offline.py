"""The default: no provider. It speaks only where ``espeak-ng`` is installed (a laptop trying
voice notes), its WAV encoded to OGG/Opus with PyAV; elsewhere ``speaks`` is False and replies
stay text."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

from shared.speech.base import Speech, SpeechAudio
from shared.speech.exceptions import SpeechUnavailableError
from shared.speech.ogg import opus_duration, opus_from_file

WORDS_PER_MINUTE = 160  # espeak-ng's own default pace, scaled by the shop's speed
TIMEOUT = 20.0


class OfflineSpeech(Speech):
    name = "offline"

    def __init__(self, **_unused: Any) -> None:
        self.program = shutil.which("espeak-ng")

    @property
    def speaks(self) -> bool:
        return self.program is not None

    def _synthesize(self, text: str, voice: str, language: str, speed: float) -> SpeechAudio:
        if self.program is None:
            raise SpeechUnavailableError("offline: espeak-ng is not installed")
        command = [
            self.program,
            "-v",
            voice or language,
            "-s",
            str(round(WORDS_PER_MINUTE * speed)),
        ]
        try:
            # The text on stdin, never on the command line (another user could read it there).
            done = subprocess.run(  # noqa: S603 - a fixed program, arguments not from a shell
                [*command, "--stdin", "--stdout"],
                input=text.encode(),
                capture_output=True,
                timeout=TIMEOUT,
                check=True,
            )
        except (OSError, subprocess.SubprocessError) as error:
            raise SpeechUnavailableError(
                f"offline: espeak-ng failed ({type(error).__name__})"
            ) from None
        data = opus_from_file(done.stdout)
        return SpeechAudio(data, opus_duration(data))
