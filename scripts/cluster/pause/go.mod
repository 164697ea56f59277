module kfp-artifacts.local/pause

go 1.24.0
