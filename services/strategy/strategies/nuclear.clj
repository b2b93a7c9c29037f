;; Nuclear Energy with Feaver Frontrunner (ALCHEMISER.md, "Nuclear").
;;
;; Order of checks:
;;   1. Overbought guard: SPY, then IOO, TQQQ, VTV, XLF, then VOX with RSI(10) > 79.
;;      The first one that is overbought decides: UVXY when that symbol or any symbol after
;;      it in the list SPY, IOO, TQQQ, VTV, XLF has RSI(10) > 81, else UVXY 75% / BTAL 25%.
;;      (VOX only looks at XLF > 81.)
;;   2. Oversold: TQQQ RSI(10) < 30 -> TQQQ; SPY RSI(10) < 30 -> UPRO.
;;   3. Regime: SPY above its 200-day SMA -> top 3 nuclear names by 90-day average return;
;;      otherwise two bear sub-strategies weighted by inverse 14-day volatility. Bear 1 has
;;      the QQQ-decline and IEF rules; Bear 2 has neither (the original's Nuclear.clj).
(defsymphony
 "Nuclear"
 {:asset-class "EQUITIES", :rebalance-frequency :daily}
 (if (> (rsi "SPY" {:window 10}) 79)
   (if (> (rsi "SPY" {:window 10}) 81)
     (asset "UVXY")
     (if (> (rsi "IOO" {:window 10}) 81)
       (asset "UVXY")
       (if (> (rsi "TQQQ" {:window 10}) 81)
         (asset "UVXY")
         (if (> (rsi "VTV" {:window 10}) 81)
           (asset "UVXY")
           (if (> (rsi "XLF" {:window 10}) 81)
             (asset "UVXY")
             (group "UVXY 75|25 BTAL"
                    [(weight-specified 0.75 (asset "UVXY") 0.25 (asset "BTAL"))]))))))
   (if (> (rsi "IOO" {:window 10}) 79)
     (if (> (rsi "IOO" {:window 10}) 81)
       (asset "UVXY")
       (if (> (rsi "TQQQ" {:window 10}) 81)
         (asset "UVXY")
         (if (> (rsi "VTV" {:window 10}) 81)
           (asset "UVXY")
           (if (> (rsi "XLF" {:window 10}) 81)
             (asset "UVXY")
             (group "UVXY 75|25 BTAL"
                    [(weight-specified 0.75 (asset "UVXY") 0.25 (asset "BTAL"))])))))
     (if (> (rsi "TQQQ" {:window 10}) 79)
       (if (> (rsi "TQQQ" {:window 10}) 81)
         (asset "UVXY")
         (if (> (rsi "VTV" {:window 10}) 81)
           (asset "UVXY")
           (if (> (rsi "XLF" {:window 10}) 81)
             (asset "UVXY")
             (group "UVXY 75|25 BTAL"
                    [(weight-specified 0.75 (asset "UVXY") 0.25 (asset "BTAL"))]))))
       (if (> (rsi "VTV" {:window 10}) 79)
         (if (> (rsi "VTV" {:window 10}) 81)
           (asset "UVXY")
           (if (> (rsi "XLF" {:window 10}) 81)
             (asset "UVXY")
             (group "UVXY 75|25 BTAL"
                    [(weight-specified 0.75 (asset "UVXY") 0.25 (asset "BTAL"))])))
         (if (> (rsi "XLF" {:window 10}) 79)
           (if (> (rsi "XLF" {:window 10}) 81)
             (asset "UVXY")
             (group "UVXY 75|25 BTAL"
                    [(weight-specified 0.75 (asset "UVXY") 0.25 (asset "BTAL"))]))
           (if (> (rsi "VOX" {:window 10}) 79)
             (if (> (rsi "XLF" {:window 10}) 81)
               (asset "UVXY")
               (group "UVXY 75|25 BTAL"
                      [(weight-specified 0.75 (asset "UVXY") 0.25 (asset "BTAL"))]))
             ;; Oversold
             (if (< (rsi "TQQQ" {:window 10}) 30)
               (asset "TQQQ")
               (if (< (rsi "SPY" {:window 10}) 30)
                 (asset "UPRO")
                 ;; Regime
                 (if (> (current-price "SPY") (moving-average-price "SPY" {:window 200}))
                   (group "Bull"
                          [(filter (moving-average-return {:window 90})
                                   (select-top 3)
                                   [(asset "SMR") (asset "BWXT") (asset "LEU")
                                    (asset "EXC") (asset "NLR") (asset "OKLO")])])
                   (group "Bear"
                          [(weight-inverse-volatility
                            14
                            [(group "Bear 1"
                                    [(if (< (rsi "PSQ" {:window 10}) 35)
                                       (asset "SQQQ")
                                       (if (< (cumulative-return "QQQ" {:window 60}) -10)
                                         (if (> (rsi "TLT" {:window 20}) (rsi "PSQ" {:window 20}))
                                           (asset "TQQQ")
                                           (asset "PSQ"))
                                         (if (> (current-price "TQQQ")
                                                (moving-average-price "TQQQ" {:window 20}))
                                           (if (> (rsi "TLT" {:window 20}) (rsi "PSQ" {:window 20}))
                                             (asset "TQQQ")
                                             (asset "SQQQ"))
                                           (if (> (rsi "IEF" {:window 10}) (rsi "PSQ" {:window 20}))
                                             (asset "SQQQ")
                                             (if (> (rsi "TLT" {:window 20}) (rsi "PSQ" {:window 20}))
                                               (asset "QQQ")
                                               (asset "SQQQ"))))))])
                             ;; Bear 2: Bear 1 without the QQQ-decline rule and without the
                             ;; IEF rule, as in the original's Nuclear.clj.
                             (group "Bear 2"
                                    [(if (< (rsi "PSQ" {:window 10}) 35)
                                       (asset "SQQQ")
                                       (if (> (current-price "TQQQ")
                                              (moving-average-price "TQQQ" {:window 20}))
                                         (if (> (rsi "TLT" {:window 20}) (rsi "PSQ" {:window 20}))
                                           (asset "TQQQ")
                                           (asset "SQQQ"))
                                         (if (> (rsi "TLT" {:window 20}) (rsi "PSQ" {:window 20}))
                                           (asset "QQQ")
                                           (asset "SQQQ"))))])])])))))))))))
