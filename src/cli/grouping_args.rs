//! The grouping flags `pack` and `build` share: components forced into
//! layers of their own, and components named for unowned files.

use std::path::PathBuf;

use anyhow::{Context, Result};
use chunkah::jobs::{Assignments, PackOptions};
use clap::Args;

#[derive(Debug, Args)]
pub struct GroupingArgs {
    /// Give this component a layer of its own (repeatable: `deb:openssl`,
    /// `rpm:kernel`, `pypi:torch`, a `user.component` value or a name from
    /// --components).
    #[arg(long, value_name = "COMPONENT")]
    isolate: Vec<String>,
    /// A component-assignment file for files no package database owns: one
    /// `PATTERN COMPONENT` a line (`/opt/app/** app`; `*` and `?` within a
    /// name, `**` across directories; a directory's pattern claims what is
    /// below it; the first match wins; `#` comments).
    #[arg(long = "components", value_name = "FILE")]
    components: Option<PathBuf>,
}

impl GroupingArgs {
    /// Sets the grouping options of `options`.
    pub fn apply(&self, options: &mut PackOptions) -> Result<()> {
        options.isolate = self.isolate.clone();
        if let Some(file) = &self.components {
            options.assignments = Assignments::read(file).context("--components")?;
        }
        Ok(())
    }
}
