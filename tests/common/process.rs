//! Reading what a started process prints, line by line, from both its streams.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;

/// The lines `child` prints on stdout and stderr, as they come. Only the reader
/// threads hold senders, so the channel closes when the process exits and a failed
/// start is seen at once.
pub fn output_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, lines) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().expect("stdout piped")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr piped")),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    lines
}
