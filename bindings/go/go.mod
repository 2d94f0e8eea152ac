module rewardkit.dev/go

go 1.24
