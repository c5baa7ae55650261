//! Every environment variable cloudpf reads, named once, next to the flag or config key
//! it stands for (as quickwit's `ConfigValue` binds each variable beside its key). The
//! CLI binds them to its flags with clap's `env = vars::X.name`; the Lambdas read the
//! same names in `LambdaConfig::from_vars`; the README's table of variables and the
//! stacks in `infra/` are checked against [`ALL`] by tests, so a renamed variable cannot
//! linger in one place (as `CLOUDPF_INDEX_DIR` once did).

/// One environment variable: its name, the `cloudpf` flag (or `serve` config key) it
/// sets, and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Var {
    pub name: &'static str,
    /// The flag it stands in for, `""` when only the Lambdas read it.
    pub flag: &'static str,
    pub meaning: &'static str,
}

pub const DATA_DIR: Var = Var {
    name: "CLOUDPF_DATA_DIR",
    flag: "--data-dir",
    meaning: "data directory: indexes, the local lake, the tenants file",
};
pub const ADDR: Var = Var {
    name: "CLOUDPF_ADDR",
    flag: "--addr",
    meaning: "address the search API listens on",
};
pub const CONFIG: Var = Var {
    name: "CLOUDPF_CONFIG",
    flag: "--config",
    meaning: "the search API's config file (TOML)",
};
pub const TENANTS_FILE: Var = Var {
    name: "CLOUDPF_TENANTS_FILE",
    flag: "--tenants-file",
    meaning: "tenants file: API keys, CORS origins, search clusters",
};
pub const SEARCH_BACKEND: Var = Var {
    name: "CLOUDPF_SEARCH_BACKEND",
    flag: "--search-backend",
    meaning: "`embedded` (Tantivy) or `elasticsearch`",
};
pub const LOG_FORMAT: Var = Var {
    name: "CLOUDPF_LOG_FORMAT",
    flag: "--log-format",
    meaning: "`text` or `json` logs",
};
pub const PRODUCTS_TABLE: Var = Var {
    name: "CLOUDPF_PRODUCTS_TABLE",
    flag: "--products-table",
    meaning: "DynamoDB table of the products",
};
pub const PURCHASES_TABLE: Var = Var {
    name: "CLOUDPF_PURCHASES_TABLE",
    flag: "--purchases-table",
    meaning: "DynamoDB table of the purchases",
};
pub const ELASTICSEARCH_URL: Var = Var {
    name: "CLOUDPF_ELASTICSEARCH_URL",
    flag: "--elasticsearch-url",
    meaning: "`seed`: the cluster it writes into the tenants file",
};
pub const LAKE_BUCKET: Var = Var {
    name: "CLOUDPF_LAKE_BUCKET",
    flag: "--lake-bucket",
    meaning: "the lake and dead letters in this S3 bucket (required by the Lambdas)",
};
pub const LAKE_PREFIX: Var = Var {
    name: "CLOUDPF_LAKE_PREFIX",
    flag: "--lake-prefix",
    meaning: "key prefix of the lake inside the bucket",
};
pub const S3_ENDPOINT: Var = Var {
    name: "AWS_ENDPOINT_URL_S3",
    flag: "--s3-endpoint",
    meaning: "S3-compatible endpoint (MinIO, moto)",
};
pub const S3_FORCE_PATH_STYLE: Var = Var {
    name: "CLOUDPF_S3_FORCE_PATH_STYLE",
    flag: "--force-path-style",
    meaning: "`true` for path-style S3 addressing",
};
pub const LAKE_KMS_KEY_ID: Var = Var {
    name: "CLOUDPF_LAKE_KMS_KEY_ID",
    flag: "",
    meaning: "Lambdas: KMS key of the lake's objects (else SSE-S3)",
};
pub const ATHENA_WORKGROUP: Var = Var {
    name: "CLOUDPF_ATHENA_WORKGROUP",
    flag: "",
    meaning: "search API Lambda: Athena workgroup of the reports",
};
pub const ATHENA_DATABASE: Var = Var {
    name: "CLOUDPF_ATHENA_DATABASE",
    flag: "",
    meaning: "search API Lambda: Glue database of the reports",
};
pub const TENANTS_REFRESH_SECONDS: Var = Var {
    name: "CLOUDPF_TENANTS_REFRESH_SECONDS",
    flag: "",
    meaning: "Lambdas: the longest a change of the tenants file waits to be seen (1)",
};

pub const TOKEN_SECRET: Var = Var {
    name: "CLOUDPF_TOKEN_SECRET",
    flag: "",
    meaning: "search API: the secret (32 bytes or more) that signs short-lived tokens; without it `serve` signs with a secret of its own process and the Lambda mints none",
};

/// Every variable above, in the README's order.
pub const ALL: &[Var] = &[
    DATA_DIR,
    ADDR,
    CONFIG,
    TENANTS_FILE,
    SEARCH_BACKEND,
    LOG_FORMAT,
    PRODUCTS_TABLE,
    PURCHASES_TABLE,
    ELASTICSEARCH_URL,
    LAKE_BUCKET,
    LAKE_PREFIX,
    S3_ENDPOINT,
    S3_FORCE_PATH_STYLE,
    LAKE_KMS_KEY_ID,
    ATHENA_WORKGROUP,
    ATHENA_DATABASE,
    TENANTS_REFRESH_SECONDS,
    TOKEN_SECRET,
];

/// Names that were renamed: setting one is an error rather than a silent default.
pub const RENAMED: &[(&str, Var)] = &[("CLOUDPF_INDEX_DIR", DATA_DIR)];

/// The one reading of a yes/no variable, for the CLI's flags and the Lambdas alike:
/// `true` or `false` (an empty value is `false`); anything else is an error, so a typo
/// like `ture` is not silently "no".
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text {
        "" | "false" => Ok(false),
        "true" => Ok(true),
        other => Err(format!("must be true or false, got {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_is_named_once() {
        let mut names: Vec<_> = ALL.iter().map(|v| v.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        for (old, new) in RENAMED {
            assert!(!names.contains(old), "{old} is both current and renamed");
            assert!(ALL.contains(new));
        }
    }

    #[test]
    fn a_yes_no_variable_is_true_or_false_and_nothing_else() {
        assert_eq!(parse_bool("true"), Ok(true));
        assert_eq!(parse_bool("false"), Ok(false));
        assert_eq!(parse_bool(""), Ok(false));
        for typo in ["ture", "yes", "1", "TRUE "] {
            assert!(parse_bool(typo).unwrap_err().contains(typo.trim()));
        }
    }
}
